//! Types and names shared by kya's kernel programs (`kya-ebpf`) and user space (`kya-agent`).
//!
//! Everything here is `#[repr(C)]`, made of integers and fixed-size arrays with explicit padding,
//! so both sides agree on the bytes. Enums cross the boundary as integers.
#![no_std]

pub mod event;
pub mod facility;
pub mod grant;
pub mod keys;
pub mod maps;
pub mod mounts;
pub mod net;
pub mod offsets;
pub mod programs;
pub mod protect;
pub mod tag;
pub mod terminal;
pub mod verdict;
