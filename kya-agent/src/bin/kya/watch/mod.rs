//! `kya watch [--json] [--notify]`: pending requests as they arrive, answered on the spot.
//!
//! The daemon pushes the whole pending list on one connection whenever it changes
//! (`Request::Watch`); this side turns lists into new / changed / ended events. At a terminal
//! it asks the human about each new request in turn; otherwise (or with `--json`) it prints
//! one JSON line per event and asks nothing. Answers are ordinary `approve` / `deny` calls
//! with this process's identity, so the daemon checks and audits them as `kya approve` /
//! `kya deny`.
mod answer;
mod changes;
mod render;

use std::{
    collections::{HashSet, VecDeque},
    io::{BufRead as _, IsTerminal as _, Write as _},
    path::{Path, PathBuf},
    process::{Command, ExitCode, Stdio},
    sync::mpsc,
    thread,
};

use kya_agent::control::{
    client::{self, Answers},
    protocol::{PendingView, Proof, Request, Response},
};

use self::{
    answer::Answer,
    changes::{Event, Known},
};

#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON object per new, changed or ended request and ask nothing (the default
    /// when standard output is not a terminal).
    #[arg(long)]
    json: bool,
    /// Also show a desktop notification for each new request (needs `notify-send` and a
    /// desktop session).
    #[arg(long)]
    notify: bool,
}

/// What the main loop waits for.
enum Input {
    /// The daemon's current pending list.
    List(Vec<PendingView>),
    /// The daemon ended the watch, or the connection failed.
    Lost(String),
    /// A line typed at the prompt.
    Line(String),
    /// Standard input closed.
    Closed,
}

pub fn run(socket: &Path, args: &Args) -> ExitCode {
    let mut answers = match client::follow(socket, &Request::Watch {}) {
        Ok(answers) => answers,
        Err(error) => return fail(&error.to_string()),
    };
    // The first answer says whether the daemon serves this caller at all (an agent process
    // is refused here when the kernel did not refuse it the socket already).
    let first = match next_list(&mut answers) {
        Ok(list) => list,
        Err(message) => return fail(&message),
    };
    let (inputs, input) = mpsc::channel();
    inputs
        .send(Input::List(first))
        .expect("the receiver is here");
    let follower = inputs.clone();
    thread::spawn(move || {
        loop {
            match next_list(&mut answers) {
                Ok(list) => {
                    if follower.send(Input::List(list)).is_err() {
                        return;
                    }
                }
                Err(message) => {
                    let _ = follower.send(Input::Lost(message));
                    return;
                }
            }
        }
    });
    let notify = args.notify.then(notifier).flatten();
    if args.json || !std::io::stdout().is_terminal() {
        return follow_json(&input, notify.as_deref());
    }
    let asking = std::io::stdin().is_terminal();
    if asking {
        thread::spawn(move || read_lines(&inputs));
    } else {
        drop(inputs);
    }
    Interactive {
        socket,
        asking,
        notify: notify.as_deref(),
        known: Known::default(),
        queue: VecDeque::new(),
        shown: HashSet::new(),
        answered: HashSet::new(),
        current: None,
        awaiting_code: None,
    }
    .run(&input)
}

fn fail(message: &str) -> ExitCode {
    eprintln!("kya watch: {message}");
    ExitCode::FAILURE
}

/// The next pending list from the daemon, or why there is none.
fn next_list(answers: &mut Answers) -> Result<Vec<PendingView>, String> {
    match answers.receive() {
        Ok(Some(Response::Pending { requests })) => Ok(requests),
        Ok(Some(Response::Error { message })) => Err(message),
        Ok(Some(other)) => Err(format!("unexpected answer from kya-agent: {other:?}")),
        Ok(None) => Err(
            "kya-agent ended the watch (it stopped or restarted); run `kya watch` \
                         again once `kya status` answers"
                .to_owned(),
        ),
        Err(error) => Err(error.to_string()),
    }
}

fn read_lines(inputs: &mpsc::Sender<Input>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        if inputs.send(Input::Line(line)).is_err() {
            return;
        }
    }
    let _ = inputs.send(Input::Closed);
}

/// `--json`: one line per event, until the daemon ends the watch.
fn follow_json(input: &mpsc::Receiver<Input>, notify: Option<&Path>) -> ExitCode {
    let mut known = Known::default();
    let mut stdout = std::io::stdout();
    while let Ok(next) = input.recv() {
        match next {
            Input::List(list) => {
                for (event, request) in known.update(list) {
                    if writeln!(stdout, "{}", changes::json_line(event, &request)).is_err() {
                        // Whoever read our output is gone.
                        return ExitCode::SUCCESS;
                    }
                    if event == Event::New {
                        notify_desktop(notify, &request);
                    }
                }
                let _ = stdout.flush();
            }
            Input::Lost(message) => return fail(&message),
            Input::Line(_) | Input::Closed => {}
        }
    }
    ExitCode::SUCCESS
}

/// `notify-send`, when asked for, found on the `PATH`, and a desktop session is there.
fn notifier() -> Option<PathBuf> {
    let session = std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || std::env::var_os("DISPLAY").is_some();
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("notify-send"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() || !session {
        eprintln!(
            "kya watch: no desktop notifications: {}",
            if found.is_none() {
                "notify-send is not installed (package libnotify-bin)"
            } else {
                "no desktop session (DBUS_SESSION_BUS_ADDRESS is not set)"
            }
        );
    }
    found.filter(|_| session)
}

/// Shows a notification for `request`; never waits for it and never fails the watch.
fn notify_desktop(notify: Option<&Path>, request: &PendingView) {
    let Some(program) = notify else { return };
    let (title, body) = render::notification(request);
    let _ = Command::new(program)
        .args(["--app-name=kya", "--", &title, &body])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// The view at a terminal: each new request shown and asked about in turn.
struct Interactive<'a> {
    socket: &'a Path,
    /// Whether the human can answer (standard input is a terminal).
    asking: bool,
    notify: Option<&'a Path>,
    known: Known,
    /// Requests shown or to show, not yet answered here, in arrival order.
    queue: VecDeque<String>,
    /// Requests the human has seen (their end is worth a line).
    shown: HashSet<String>,
    /// Requests answered here (their end needs no line).
    answered: HashSet<String>,
    /// The request asked about now, and whether a custom duration is awaited.
    current: Option<(String, bool)>,
    /// The approval waiting for the approver's authenticator code (an agent with
    /// `approval = "totp"`), and the request it is for.
    awaiting_code: Option<(String, Request)>,
}

impl Interactive<'_> {
    fn run(mut self, input: &mpsc::Receiver<Input>) -> ExitCode {
        println!(
            "kya watch: pending requests appear here as agents are refused{}",
            if self.asking {
                "; answer each one (q to quit)"
            } else {
                " (standard input is not a terminal: not asking)"
            }
        );
        while let Ok(next) = input.recv() {
            match next {
                Input::List(list) => self.list(list),
                Input::Line(line) => {
                    if !self.line(&line) {
                        return ExitCode::SUCCESS;
                    }
                }
                Input::Closed => return ExitCode::SUCCESS,
                Input::Lost(message) => {
                    println!();
                    return fail(&message);
                }
            }
            self.ask_next();
        }
        ExitCode::SUCCESS
    }

    fn list(&mut self, list: Vec<PendingView>) {
        for (event, request) in self.known.update(list) {
            match event {
                Event::New => {
                    notify_desktop(self.notify, &request);
                    self.queue.push_back(request.id);
                }
                Event::Changed => {}
                Event::Ended => {
                    self.queue.retain(|id| *id != request.id);
                    let was_current = self
                        .current
                        .as_ref()
                        .is_some_and(|(id, _)| *id == request.id);
                    let was_current = was_current
                        || self
                            .awaiting_code
                            .as_ref()
                            .is_some_and(|(id, _)| *id == request.id);
                    if was_current {
                        self.current = None;
                        self.awaiting_code = None;
                    }
                    if self.shown.remove(&request.id) && !self.answered.remove(&request.id) {
                        println!(
                            "{}{} left the list: answered elsewhere",
                            if was_current { "\n" } else { "" },
                            request.id
                        );
                    }
                }
            }
        }
    }

    /// Shows the next request and asks about it, unless one is being asked about.
    fn ask_next(&mut self) {
        if self.current.is_some() || self.awaiting_code.is_some() {
            return;
        }
        let Some(id) = self
            .queue
            .iter()
            .find(|id| !self.shown.contains(*id))
            .cloned()
        else {
            return;
        };
        let Some(request) = self.known.get(&id) else {
            return;
        };
        println!("\n{}", render::request(request));
        self.shown.insert(id.clone());
        if self.asking {
            let waiting = self
                .queue
                .iter()
                .filter(|id| !self.shown.contains(*id))
                .count();
            print!("{}", render::prompt(&id, waiting));
            let _ = std::io::stdout().flush();
            self.current = Some((id, false));
        }
    }

    /// Acts on a typed line; `false` to quit.
    fn line(&mut self, line: &str) -> bool {
        if let Some((id, mut request)) = self.awaiting_code.take() {
            if let Request::Approve { proof, .. } = &mut request {
                *proof = Some(Proof::Totp {
                    code: line.trim().to_owned(),
                });
            }
            self.send(&id, &request);
            return true;
        }
        let Some((id, custom)) = self.current.take() else {
            if answer::parse(line) == Ok(Answer::Quit) {
                return false;
            }
            if !line.trim().is_empty() {
                println!("nothing waits for an answer now (q to quit)");
            }
            return true;
        };
        let parsed = if custom {
            answer::parse_duration(line).map(Answer::For)
        } else {
            answer::parse(line)
        };
        let answer = match parsed {
            Ok(answer) => answer,
            Err(message) => {
                print!(
                    "{message}\n{id}{} > ",
                    if custom { " for how long" } else { "" }
                );
                let _ = std::io::stdout().flush();
                self.current = Some((id, custom));
                return true;
            }
        };
        match answer {
            Answer::Quit => return false,
            Answer::Custom => {
                print!("{id} for how long (such as 30m or 2h, at most 1d) > ");
                let _ = std::io::stdout().flush();
                self.current = Some((id, true));
            }
            Answer::Skip => println!("{id} skipped: it stays pending"),
            decision => self.decide(&id, &decision),
        }
        true
    }

    /// Sends the decision, with the proof the agent's `approval` asks for: a signature made
    /// here with the approver's ssh key, or (asked for next) their authenticator's code.
    fn decide(&mut self, id: &str, decision: &Answer) {
        let Some(mut request) = answer::request(id, decision) else {
            return;
        };
        if let Request::Approve {
            once,
            duration,
            proof,
            ..
        } = &mut request
        {
            match self.proof_for(id, *once, duration.clone()) {
                Ok(Needs::Nothing) => {}
                Ok(Needs::Given(given)) => *proof = Some(given),
                Ok(Needs::Code) => {
                    print!("{id}: this agent's approvals need your authenticator's code > ");
                    let _ = std::io::stdout().flush();
                    self.awaiting_code = Some((id.to_owned(), request));
                    return;
                }
                Err(message) => {
                    println!("{id} not decided: {message}");
                    return;
                }
            }
        }
        self.send(id, &request);
    }

    /// What an approval of `id` on these terms must carry, from the daemon's challenge.
    fn proof_for(&self, id: &str, once: bool, duration: Option<String>) -> Result<Needs, String> {
        let challenge = Request::Challenge {
            approve: Some(id.to_owned()),
            agent: None,
            file: None,
            connect: None,
            unix: None,
            once,
            duration,
        };
        match client::call(self.socket, &challenge) {
            Ok(Response::Challenge {
                approval,
                text,
                nonce,
                ..
            }) => match (approval.as_str(), nonce) {
                ("ssh-key", Some(nonce)) => {
                    println!(
                        "signing, for kya-agent:\n{}",
                        kya_agent::text::escape_lines(&text)
                    );
                    let key = crate::prove::key(None)?;
                    let signature = crate::prove::sign(&key, &text)?;
                    Ok(Needs::Given(Proof::SshKey { nonce, signature }))
                }
                ("totp", _) => Ok(Needs::Code),
                _ => Ok(Needs::Nothing),
            },
            Ok(Response::Error { message }) => Err(message),
            Ok(other) => Err(format!("unexpected answer from kya-agent: {other:?}")),
            Err(error) => Err(error.to_string()),
        }
    }

    fn send(&mut self, id: &str, request: &Request) {
        match client::call(self.socket, request) {
            Ok(Response::Granted { grant }) => {
                self.answered.insert(id.to_owned());
                println!("{}", crate::decide::describe(&grant));
            }
            Ok(Response::Denied { request }) => {
                self.answered.insert(id.to_owned());
                println!("{request} refused");
            }
            Ok(Response::Error { message }) => {
                println!("{id} not decided: {message}");
            }
            Ok(other) => println!("{id} not decided: unexpected answer from kya-agent: {other:?}"),
            Err(error) => println!("{id} not decided: {error}"),
        }
    }
}

/// What an approval needs besides the caller's uid.
enum Needs {
    Nothing,
    /// This proof, made here.
    Given(Proof),
    /// The approver's authenticator code, typed next.
    Code,
}
