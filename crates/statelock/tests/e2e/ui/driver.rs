//! The browser the UI tests drive: `ui/browser.js` under Node, with Debian's chromium through
//! playwright-core (both installed by `scripts/setup-test-tools.sh`), one JSON command per
//! line. Killed when dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};
use statelock_test_support::tools_dir;

/// Debian's chromium; `STATELOCK_CHROMIUM` may name another build of it.
fn chromium() -> PathBuf {
    let path = std::env::var_os("STATELOCK_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: run bash scripts/setup-test-tools.sh (it installs Debian's chromium)",
        path.display()
    );
    path
}

fn playwright_core() -> PathBuf {
    let path = tools_dir().join("playwright/node_modules/playwright-core");
    assert!(
        path.is_dir(),
        "{} is missing: run bash scripts/setup-test-tools.sh",
        path.display()
    );
    path
}

/// Where screenshots go: `STATELOCK_UI_SCREENSHOTS` (the README's come from
/// `STATELOCK_UI_SCREENSHOTS=docs/ui`), else a directory under the target dir.
pub fn screenshot_dir() -> PathBuf {
    let dir = match std::env::var_os("STATELOCK_UI_SCREENSHOTS") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                statelock_test_support::workspace_root().join(d)
            }
        }
        _ => PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"),
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Browser {
    child: Child,
    /// `None` once closed, which tells the driver to close the browser and exit.
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Browser {
    pub fn start() -> Browser {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/ui/browser.js");
        let mut child = Command::new("node")
            .arg(script)
            .env("PLAYWRIGHT_CORE", playwright_core())
            .env("CHROMIUM", chromium())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node (Node 20) runs the browser driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            stdin: Some(stdin),
            stdout,
        };
        browser.context("main");
        browser
    }

    /// Runs `command`; panics with the browser's error when it failed.
    pub fn send(&mut self, command: Value) -> Value {
        let reply = self.try_send(command.clone());
        assert!(
            reply["ok"] == true,
            "browser command {command} failed: {}",
            reply["error"]
        );
        reply
    }

    /// Runs `command` and returns the reply, `ok: false` included.
    pub fn try_send(&mut self, command: Value) -> Value {
        let stdin = self.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the browser driver ended (see stderr)");
        serde_json::from_str(&line).unwrap()
    }

    /// Switches to the browser context `name` (its own cookies), creating it at 1280×800.
    pub fn context(&mut self, name: &str) {
        self.send(json!({"op": "context", "name": name}));
    }

    /// Switches to `name`, creating it with a `width`×`height` viewport.
    pub fn context_sized(&mut self, name: &str, width: u32, height: u32) {
        self.send(
            json!({"op": "context", "name": name, "viewport": {"width": width, "height": height}}),
        );
    }

    /// Opens `url`; returns the status of the page that loaded.
    pub fn goto(&mut self, url: &str) -> u64 {
        self.send(json!({"op": "goto", "url": url}))["status"]
            .as_u64()
            .unwrap_or(0)
    }

    /// The visible texts of every element `selector` matches.
    pub fn texts(&mut self, selector: &str) -> Vec<String> {
        let reply = self.send(json!({"op": "text", "selector": selector}));
        reply["texts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_owned())
            .collect()
    }

    /// The visible text of the first match of `selector`, which must exist.
    pub fn text(&mut self, selector: &str) -> String {
        let texts = self.texts(selector);
        assert!(
            !texts.is_empty(),
            "nothing matches {selector}:\n{}",
            self.html()
        );
        texts[0].clone()
    }

    pub fn html(&mut self) -> String {
        self.send(json!({"op": "html"}))["html"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub fn url(&mut self) -> String {
        self.send(json!({"op": "html"}))["url"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Clicks and waits for the page it leads to; returns that page's status (if it
    /// navigated).
    pub fn click(&mut self, selector: &str) -> Option<u64> {
        self.send(json!({"op": "click", "selector": selector}))["status"].as_u64()
    }

    pub fn fill(&mut self, selector: &str, value: &str) {
        self.send(json!({"op": "fill", "selector": selector, "value": value}));
    }

    /// Waits until `selector` reaches `state` (`visible`, `attached`, `detached`).
    pub fn wait(&mut self, selector: &str, state: &str, timeout_ms: u64) -> Result<(), String> {
        let reply = self.try_send(
            json!({"op": "wait", "selector": selector, "state": state, "timeout": timeout_ms}),
        );
        match reply["ok"] == true {
            true => Ok(()),
            false => Err(reply["error"].to_string()),
        }
    }

    /// Evaluates `js` in the page (an expression, or a function source) and returns its value.
    pub fn eval(&mut self, js: &str) -> Value {
        self.send(json!({"op": "eval", "js": js}))["value"].clone()
    }

    /// Writes `<screenshot dir>/<name>.png`.
    pub fn screenshot(&mut self, name: &str, full_page: bool) {
        let path = screenshot_dir().join(format!("{name}.png"));
        self.send(json!({"op": "screenshot", "path": path, "fullPage": full_page}));
        assert!(path.is_file(), "no screenshot at {}", path.display());
    }

    pub fn cookies(&mut self) -> Vec<Value> {
        self.send(json!({"op": "cookies"}))["cookies"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Clicks a download link; returns the file's suggested name and text.
    pub fn download(&mut self, selector: &str) -> (String, String) {
        let reply = self.send(json!({"op": "download", "selector": selector}));
        (
            reply["name"].as_str().unwrap().to_owned(),
            reply["text"].as_str().unwrap().to_owned(),
        )
    }

    /// A page at `origin` (another site) submits a form with `fields` to `target`; returns
    /// the status and body of the answer the browser got.
    pub fn cross_site_post(&mut self, origin: &str, target: &str, fields: Value) -> (u64, String) {
        let reply = self.send(
            json!({"op": "cross_site_post", "origin": origin, "target": target, "fields": fields}),
        );
        (
            reply["status"].as_u64().unwrap_or(0),
            reply["body"].as_str().unwrap_or("").to_owned(),
        )
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // End of input: the driver closes chromium (its child) and exits. Killed only if it
        // does not, since chromium would then outlive it for a moment.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
