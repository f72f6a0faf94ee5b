//! One line for each thing the set-up needs: whether it was already there or was installed now,
//! so a slow first run shows what it is doing and a second run shows that it did nothing.

pub fn present(what: &str) {
    println!("already present: {what}");
}

pub fn installed(what: &str) {
    println!("installed: {what}");
}
