//! `serve` without a model: the Train view's API (settings, start, pause, step, resume,
//! stop, the event stream), the Runs view's (list, follow a run another process
//! writes, open one to draw on), the Equations view's routes, the access rules, and
//! hostile clients. Each test starts its own server in this process, training into its
//! own temporary directory.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mnist_nn::run_lock::RunLock;
use mnist_nn::serve::{App, Options, start_app};
use serde_json::{Value, json};

use crate::http::{self, get, post_json, request, send_raw};
use crate::sse::Events;
use crate::util::{root, run_bin_ok, saved_params, trained_run};

/// A server with no model, training into `runs`.
fn server(runs: &Path) -> String {
    server_with(Options {
        runs: runs.to_path_buf(),
        ..Options::default()
    })
}

/// A server with these options and no model, on a free port of 127.0.0.1.
fn server_with(options: Options) -> String {
    let options = Options {
        data_dir: root().join("data/mnist"),
        ..options
    };
    let server = start_app(App::new(options, None), "127.0.0.1", 0).expect("listens");
    server.address().to_string()
}

/// The shipped sgd config from `/api/settings`, made small: hidden 16, 2,000 images.
fn small_config(address: &str, name: &str, epochs: usize, batch: usize) -> Value {
    let settings = get(address, "/api/settings").json();
    let mut config = settings["configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "sgd")
        .expect("sgd is shipped")["config"]
        .clone();
    config["name"] = json!(name);
    config["model"]["hidden"] = json!(16);
    config["train"]["epochs"] = json!(epochs);
    config["train"]["batch_size"] = json!(batch);
    config["data"]["limit"] = json!(2000);
    config["data"]["dir"] = json!(root().join("data/mnist").to_str().unwrap());
    config
}

fn start(address: &str, config: &Value) -> http::Reply {
    post_json(address, "/api/train", &json!({ "config": config }))
}

/// Polls `GET /api/train` until `done` holds, failing after `timeout`.
fn wait_status(address: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let status = get(address, "/api/train").json();
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "status stuck at {status}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn finished(status: &Value) -> bool {
    matches!(
        status["state"].as_str(),
        Some("finished" | "stopped" | "failed")
    )
}

#[test]
fn without_a_model_the_page_opens_on_train_and_draw_says_why_it_is_empty() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let info = get(&address, "/api/server").json();
    assert_eq!(info["start_view"], "train");
    assert_eq!(info["training_allowed"], true);
    assert_eq!(info["model"], Value::Null);
    let message = get(&address, "/api/model").error(404);
    assert!(message.contains("no model loaded"), "{message}");
    let status = get(&address, "/api/train").json();
    assert_eq!(status["state"], "idle");
}

#[test]
fn settings_are_the_shipped_configs_as_their_files_say() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let settings = get(&address, "/api/settings").json();
    assert_eq!(settings["default"], "sgd");
    for config in settings["configs"].as_array().unwrap() {
        let file = root().join(config["file"].as_str().unwrap());
        let want = mnist_nn::config::Config::load(&file).unwrap();
        assert_eq!(
            config["config"],
            serde_json::to_value(&want).unwrap(),
            "{}",
            file.display()
        );
    }
}

#[test]
fn the_form_is_checked_as_a_config_file_is() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let good = small_config(&address, "form", 1, 100);
    let mut cases: Vec<(Value, &str)> = Vec::new();
    // A value of the wrong type, or a key the config does not have, is named by its
    // dotted key (not by a line and column of the TOML the form is turned into).
    let mut bad = good.clone();
    bad["model"]["hidden"] = json!("many");
    cases.push((bad, "`model.hidden`: invalid type: string \"many\""));
    let mut bad = good.clone();
    bad["model"]["hidden"] = json!(-3);
    cases.push((bad, "`model.hidden`: invalid value: integer `-3`"));
    let mut bad = good.clone();
    bad["train"]["learnin_rate"] = json!(0.1);
    cases.push((bad, "`train.learnin_rate`: unknown field `learnin_rate`"));
    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("name");
    cases.push((bad, "the Train form: missing field `name`"));
    let mut bad = good.clone();
    bad["train"].as_object_mut().unwrap().remove("epochs");
    cases.push((bad, "the Train form: `train`: missing field `epochs`"));
    let mut bad = good.clone();
    bad["train"]["epochs"] = json!(0);
    cases.push((bad, "train.epochs"));
    let mut bad = good.clone();
    bad["name"] = json!("../outside");
    cases.push((bad, "name"));
    let mut bad = good.clone();
    bad["data"]["dir"] = json!("/no/such/dir");
    cases.push((bad, "data.dir"));
    for (config, key) in cases {
        let message = start(&address, &config).error(400);
        assert!(message.contains(key), "{key}: {message}");
        assert!(!message.contains("column"), "{key}: {message}");
    }
    let message = post_json(&address, "/api/train", &json!({ "config": 3 })).error(400);
    assert!(message.contains("object"), "{message}");
    let message = http::post(&address, "/api/train", "application/json", b"{nope").error(400);
    assert!(message.contains("bad JSON"), "{message}");
    assert!(
        std::fs::read_dir(runs.path()).unwrap().next().is_none(),
        "a refused start left something behind"
    );
    assert_eq!(get(&address, "/api/train").json()["state"], "idle");
}

#[test]
fn controls_refuse_other_sites_and_an_idle_trainer() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let body = json!({ "config": small_config(&address, "site", 1, 100) }).to_string();
    let reply = request(
        &address,
        "POST",
        "/api/train",
        &[
            ("Content-Type", "application/json"),
            ("Origin", "http://evil.example"),
        ],
        body.as_bytes(),
    );
    assert!(reply.error(403).contains("evil.example"));
    let head = format!(
        "POST /api/train HTTP/1.1\r\nHost: evil.example:8080\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let message = send_raw(&address, head.as_bytes()).error(403);
    assert!(message.contains("evil.example"), "{message}");
    // A body that is not said to be JSON is refused before it is read (as a form
    // posted from another site would be), naming the type.
    for (path, media) in [
        ("/api/train", "text/plain"),
        ("/api/equations", "application/x-www-form-urlencoded"),
        ("/api/equations/step", "multipart/form-data; boundary=x"),
    ] {
        let reply = request(
            &address,
            "POST",
            path,
            &[("Content-Type", media)],
            body.as_bytes(),
        );
        let message = reply.error(415);
        assert!(
            message.contains(media.split(';').next().unwrap()),
            "{path}: {message}"
        );
    }
    for action in ["pause", "step", "resume", "stop"] {
        let message = post_json(&address, &format!("/api/train/{action}"), &json!({})).error(409);
        assert!(message.contains("nothing is training"), "{message}");
    }
    get(&address, "/api/train/pause").error(405);
    post_json(&address, "/api/train/jump", &json!({})).error(404);
    assert!(std::fs::read_dir(runs.path()).unwrap().next().is_none());
}

#[test]
fn allow_training_still_refuses_a_host_name_it_was_not_given() {
    // With other machines let in, a page under a domain of its own that resolves to
    // this server (DNS rebinding) is still refused; an IP address or a name given with
    // --allowed-host passes the check (and the unknown run is then a 404).
    let runs = tempfile::tempdir().unwrap();
    let address = server_with(Options {
        runs: runs.path().to_path_buf(),
        allow_training: true,
        allowed_hosts: vec!["box.lan".to_string()],
        ..Options::default()
    });
    let open = |host: &str| {
        let head = format!(
            "POST /api/runs/none/open HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n\r\n"
        );
        send_raw(&address, head.as_bytes())
    };
    let message = open("evil.example:8080").error(403);
    assert!(
        message.contains("evil.example") && message.contains("--allowed-host evil.example"),
        "{message}"
    );
    for host in [
        "box.lan:8080",
        "BOX.LAN",
        "192.168.1.5:8080",
        "[fe80::1]:80",
        "localhost",
    ] {
        let reply = open(host);
        assert_eq!(reply.status, 404, "{host}: {}", reply.text());
    }
    // The Train form goes through the same check.
    let body = json!({ "config": small_config(&address, "rebound", 1, 100) }).to_string();
    let head = format!(
        "POST /api/train HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    send_raw(&address, head.as_bytes()).error(403);
    assert!(std::fs::read_dir(runs.path()).unwrap().next().is_none());
}

#[test]
fn a_run_started_from_the_page_streams_its_progress_and_can_be_drawn_on() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let mut events = Events::open(&address, "/api/train/events");
    let mut config = small_config(&address, "live", 2, 100);
    // A table the form offered and nobody filled in is left out, as an absent key is.
    config["train"]["augment"] = json!({ "shift": null, "rotation": null });
    let reply = start(&address, &config);
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert_eq!(reply.json()["run"], "live");
    // One training at a time.
    let message = start(&address, &config).error(409);
    assert!(message.contains("already training: live"), "{message}");

    let seen = events.until(Duration::from_secs(120), |name, v| {
        name == "state" && finished(v)
    });
    let last = &seen.last().unwrap().1;
    assert_eq!(last["state"], "finished", "{last}");
    let of = |kind: &str| -> Vec<&Value> {
        seen.iter()
            .filter(|(n, _)| n == kind)
            .map(|(_, v)| v)
            .collect()
    };
    let steps = of("step");
    assert!(!steps.is_empty(), "no step event");
    let mut previous = 0;
    for step in &steps {
        let s = step["step"].as_u64().unwrap();
        assert!(s > previous, "steps out of order: {s} after {previous}");
        previous = s;
        for p in ["W1", "b1", "W2", "b2"] {
            let norm = step["grad_norms"][p].as_f64().unwrap();
            assert!(norm.is_finite() && norm > 0.0, "‖d{p}‖ = {norm}");
            // He init starts the biases at zero, where ‖Δb‖/‖b‖ has no value: null
            // at the first step only.
            let ratio = &step["update_ratio"][p];
            if s == 1 && p.starts_with('b') {
                assert_eq!(ratio, &Value::Null, "{p}");
            } else {
                let ratio = ratio.as_f64().unwrap();
                assert!(
                    ratio.is_finite() && ratio > 0.0,
                    "update ratio of {p} = {ratio}"
                );
            }
        }
        let dead = step["dead_relu"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&dead), "{dead}");
        assert!((step["lr"].as_f64().unwrap() - 0.1).abs() < 1e-12);
    }
    let weights = of("weights");
    let png = weights.last().expect("a weights event")["png"]
        .as_str()
        .unwrap();
    assert!(png.starts_with("data:image/png;base64,"), "{}", &png[..40]);

    // Two evaluated epochs, each with a confusion matrix of the whole test set whose
    // diagonal is the reported test accuracy.
    let epochs = of("epoch");
    assert_eq!(epochs.len(), 2);
    let summary: Value =
        serde_json::from_slice(&std::fs::read(runs.path().join("live/summary.json")).unwrap())
            .unwrap();
    for epoch in &epochs {
        let confusion = epoch["confusion"].as_array().expect("a confusion matrix");
        let (mut total, mut diagonal) = (0, 0);
        for (i, row) in confusion.iter().enumerate() {
            for (j, n) in row.as_array().unwrap().iter().enumerate() {
                total += n.as_u64().unwrap();
                if i == j {
                    diagonal += n.as_u64().unwrap();
                }
            }
        }
        assert_eq!(total, 10_000);
        let accuracy = epoch["test"]["accuracy"].as_f64().unwrap();
        // Both count the same argmax answers of the same network: equal up to the
        // division's rounding.
        assert!(
            (diagonal as f64 / 1e4 - accuracy).abs() < 1e-12,
            "{diagonal} vs {accuracy}"
        );
    }
    assert_eq!(summary["test"]["accuracy"], epochs[1]["test"]["accuracy"]);
    let written = std::fs::read_to_string(runs.path().join("live/config.toml")).unwrap();
    assert!(!written.contains("augment"), "{written}");
    for file in ["config.toml", "metrics.csv", "model.bpk", "checkpoint.json"] {
        assert!(runs.path().join("live").join(file).is_file(), "{file}");
    }

    // Listed, opened, drawn on.
    let listed = get(&address, "/api/runs").json();
    let entry = &listed["runs"][0];
    assert_eq!(entry["name"], "live");
    assert_eq!(entry["status"], "completed");
    assert_eq!(entry["epochs_done"], 2);
    let info = post_json(&address, "/api/runs/live/open", &json!({})).json();
    assert_eq!(info["hidden"], 16);
    assert_eq!(get(&address, "/api/server").json()["model"], "live");
    let answer = get(&address, "/api/test/0").json();
    assert_eq!(answer["index"], 0);
}

#[test]
fn pause_step_resume_and_stop_steer_the_loop_batch_by_batch() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    // 200 steps an epoch: long enough to pause inside the first.
    let config = small_config(&address, "steer", 3, 10);
    assert_eq!(start(&address, &config).status, 202);
    post_json(&address, "/api/train/pause", &json!({}));
    let paused = wait_status(&address, Duration::from_secs(60), |s| {
        s["state"] == "paused"
    });
    let at = paused["step"].as_u64().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&address, "/api/train").json()["step"],
        at,
        "moved while paused"
    );

    for k in 1..=3 {
        // The answer is the status after the batch (the loop acts within milliseconds
        // here, well inside the 5 s the answer waits).
        let reply = post_json(&address, "/api/train/step", &json!({})).json();
        assert_eq!(
            (reply["step"].as_u64(), reply["state"].as_str()),
            (Some(at + k), Some("paused"))
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(&address, "/api/train").json()["step"],
        at + 3,
        "Step ran more than one batch"
    );

    post_json(&address, "/api/train/resume", &json!({}));
    wait_status(&address, Duration::from_secs(30), |s| {
        s["state"] == "running" && s["step"].as_u64() > Some(at + 3)
    });
    // The answer waits for the loop: it has stopped and saved (or, on a slow machine,
    // is still at it).
    let stopped = post_json(&address, "/api/train/stop", &json!({})).json();
    assert!(
        matches!(stopped["state"].as_str(), Some("stopped" | "stopping")),
        "{stopped}"
    );
    let end = wait_status(&address, Duration::from_secs(60), finished);
    assert_eq!(end["state"], "stopped", "{end}");
    assert!(end["message"].as_str().unwrap().contains("--resume"));
    let dir = runs.path().join("steer");
    assert!(dir.join("checkpoint.json").is_file());
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    assert_eq!(summary["status"], "interrupted");
    // A new run may start once this one has ended; its name is taken, so it gets -2.
    let again = start(&address, &config).json();
    assert_eq!(again["run"], "steer-2");
    post_json(&address, "/api/train/stop", &json!({}));
    wait_status(&address, Duration::from_secs(60), finished);
}

/// Writes `text` to `path` at once.
fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

fn append(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

#[test]
fn a_run_whose_config_or_summary_does_not_load_is_listed_with_the_reason() {
    // It once vanished from the list, so a damaged run looked deleted.
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let broken = runs.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    write(
        &broken.join("config.toml"),
        "name = \"broken\"\nseed = = 3\n",
    );
    std::fs::create_dir(runs.path().join("not-a-run")).unwrap();
    // A run whose config loads but whose summary.json is damaged (it is written whole,
    // so this is no half-written file): unreadable too, not unfinished.
    let damaged = runs.path().join("damaged");
    std::fs::create_dir(&damaged).unwrap();
    std::fs::copy(root().join("configs/sgd.toml"), damaged.join("config.toml")).unwrap();
    write(&damaged.join("summary.json"), "{\"status\": \"comp");
    let listed = get(&address, "/api/runs").json();
    let mut listed = listed["runs"].as_array().unwrap().clone();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let damaged = listed.remove(listed.iter().position(|r| r["name"] == "damaged").unwrap());
    assert_eq!(damaged["status"], "unreadable", "{damaged:?}");
    assert!(
        damaged["problem"]
            .as_str()
            .unwrap()
            .contains("summary.json"),
        "{damaged:?}"
    );
    assert_eq!(damaged["epochs"], 10, "its config still loads: {damaged:?}");
    assert_eq!(listed[0]["name"], "broken");
    assert_eq!(listed[0]["status"], "unreadable");
    assert_eq!(listed[0]["live"], false);
    assert!(listed[0]["epochs"].is_null(), "{listed:?}");
    let problem = listed[0]["problem"].as_str().unwrap();
    assert!(
        problem.contains("config.toml") && problem.contains("line 2"),
        "{problem}"
    );
}

#[test]
fn an_imported_run_is_listed_with_its_test_accuracy_and_no_epochs_to_do() {
    // It logs no rows, and its config.toml's epochs are placeholders: it was listed as
    // "0 / 1" with no accuracy.
    let runs = tempfile::tempdir().unwrap();
    let weights = runs.path().join("w.npz");
    mnist_nn::export::write(
        &saved_params(trained_run()),
        mnist_nn::export::Format::Npz,
        &weights,
    )
    .unwrap();
    let dir = runs.path().join("brought");
    run_bin_ok(
        &[
            "import",
            weights.to_str().unwrap(),
            "--out",
            dir.to_str().unwrap(),
        ],
        &root(),
    );
    let summary: Value =
        serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap();
    let address = server(runs.path());
    let listed = get(&address, "/api/runs").json();
    let run = &listed["runs"][0];
    assert_eq!(run["name"], "brought", "{listed}");
    assert_eq!(run["status"], "imported");
    assert!(run["epochs"].is_null(), "{run}");
    assert_eq!(run["epochs_done"], 0);
    let accuracy = run["test_accuracy"].as_f64().unwrap_or(0.0);
    assert_eq!(
        accuracy,
        summary["test"]["accuracy"].as_f64().unwrap(),
        "{run}"
    );
    assert!(accuracy > 0.9, "the trained run's weights: {run}");
}

#[test]
fn a_run_written_by_another_process_is_followed_row_by_row() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let dir: PathBuf = runs.path().join("elsewhere");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(root().join("configs/sgd.toml"), dir.join("config.toml")).unwrap();
    let metrics = dir.join("metrics.csv");
    write(
        &metrics,
        "wall_time,step,tag,value\n1.0,860,train/loss,0.5\n1.0,860,train/accuracy,0.8\n",
    );
    // Fresh rows alone do not make a run live (a run killed a moment ago has them):
    // the trainer's lock does, held here for the other process.
    let listed = get(&address, "/api/runs").json();
    assert_eq!(listed["runs"][0]["name"], "elsewhere");
    assert_eq!(listed["runs"][0]["live"], false);
    assert_eq!(listed["runs"][0]["status"], "unfinished");
    let trainer = RunLock::acquire(&dir).unwrap();
    let listed = get(&address, "/api/runs").json();
    assert_eq!(listed["runs"][0]["live"], true);
    assert_eq!(listed["runs"][0]["status"], "training");

    let mut events = Events::open(&address, "/api/runs/elsewhere/events");
    let rows = events.until(Duration::from_secs(10), |_, v| v["tag"] == "train/accuracy");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].1["value"], 0.5);
    // A row written in two parts arrives once, whole.
    append(&metrics, "2.0,1720,test/accu");
    std::thread::sleep(Duration::from_millis(700));
    append(&metrics, "racy,0.9\n");
    let (name, row) = events.next(Duration::from_secs(10)).expect("the new row");
    assert_eq!(name, "row");
    assert_eq!(
        row,
        json!({"wall_time": 2.0, "step": 1720, "tag": "test/accuracy", "value": 0.9})
    );
    write(&dir.join("summary.json"), r#"{"status": "completed"}"#);
    let (name, summary) = events.next(Duration::from_secs(10)).expect("the summary");
    assert_eq!(name, "summary");
    assert_eq!(summary["status"], "completed");
    // A resumed run keeps its earlier summary while it trains again.
    let listed = get(&address, "/api/runs").json();
    assert_eq!(listed["runs"][0]["status"], "training");
    drop(trainer);
    crate::util::wait_until_released(&dir);
    let listed = get(&address, "/api/runs").json();
    assert_eq!(listed["runs"][0]["status"], "completed");
    assert_eq!(listed["runs"][0]["live"], false);
    let detail = get(&address, "/api/runs/elsewhere").json();
    assert_eq!(detail["rows"].as_array().unwrap().len(), 3);
    assert!(detail["config"].as_str().unwrap().contains("learning_rate"));

    for bad in [
        "/api/runs/.hidden",
        "/api/runs/a%2F..%2Fb",
        "/api/runs/..%2F..%2Fetc",
    ] {
        let reply = get(&address, bad);
        assert!(
            reply.status == 400 || reply.status == 404,
            "{bad}: {}",
            reply.text()
        );
    }
    get(&address, "/api/runs/nothing").error(404);
    post_json(&address, "/api/runs/nothing/open", &json!({})).error(404);
}

#[test]
fn the_equations_routes_answer_from_the_library() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    get(&address, "/api/equations").error(404);
    let body = json!({ "network": "fresh", "hidden": 8, "m": 4, "alpha": 0.5 });
    let worked = post_json(&address, "/api/equations", &body).json();
    assert_eq!(worked["m"], 4);
    assert_eq!(worked["matrices"]["dW2"]["rows"], 10);
    assert_eq!(worked["matrices"]["dW2"]["cols"], 8);
    let cell = get(&address, "/api/equations/cell?matrix=dW2&row=3&col=5").json();
    assert!(cell["formula"].as_str().unwrap().starts_with("dW2[3,5]"));
    let stepped = post_json(&address, "/api/equations/step", &json!({})).json();
    let before = stepped["stepped"]["loss_before"].as_f64().unwrap();
    let after = stepped["stepped"]["loss_after"].as_f64().unwrap();
    assert!(after < before, "{before} → {after}");
    let message = post_json(&address, "/api/equations", &json!({ "network": "model" })).error(404);
    assert!(message.contains("model"), "{message}");
}

#[test]
fn hundreds_of_idle_and_half_sent_connections_do_not_stop_the_answers() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    let mut held = Vec::new();
    for i in 0..400 {
        let mut stream = TcpStream::connect(&address).unwrap();
        if i % 2 == 0 {
            // Half a request head, never finished.
            stream
                .write_all(b"GET /api/server HTTP/1.1\r\nHost: loc")
                .unwrap();
        }
        held.push(stream);
    }
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(&address, "/api/server").status, 200);
    }
    // 20 answers on a loaded 2-core machine take milliseconds; seconds would mean the
    // requests queued behind the held connections.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "20 requests took {:?} with 400 connections held",
        started.elapsed()
    );
    // Oversized and malformed bodies on the new endpoints.
    let big = vec![b' '; (1 << 20) + 1];
    let message = http::post(&address, "/api/train", "application/json", &big).error(413);
    assert!(message.contains("the limit is 1048576"), "{message}");
    let chunked = "POST /api/equations HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n\
                   2\r\n{}\r\n0\r\n\r\n";
    send_raw(&address, chunked.as_bytes()).error(411);
    drop(held);
}

#[test]
fn the_serve_command_opens_on_train_without_a_model_and_checks_watch() {
    use crate::serve::ServeProcess;
    let bare = ServeProcess::spawn(&["serve", "--port", "0"], &[]);
    let info = get(&bare.address(), "/api/server").json();
    assert_eq!(
        (&info["start_view"], &info["model"]),
        (&json!("train"), &Value::Null)
    );
    let runs = tempfile::tempdir().unwrap();
    let watching = ServeProcess::watching(runs.path());
    let info = get(&watching.address(), "/api/server").json();
    assert_eq!(info["start_view"], "runs");
    assert_eq!(info["watch"], runs.path().to_str().unwrap());
    let out = crate::util::run_bin(
        &["serve", "--watch", "/no/such/dir", "--port", "0"],
        &root(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/no/such/dir"), "{stderr}");
    // A test set asked for by name that does not read is an error too, with or without
    // a model (it was a warning, and the page served without it).
    let empty = tempfile::tempdir().unwrap();
    let run = trained_run().to_str().unwrap();
    for (args, needle) in [
        (
            vec!["--data", "/no/such/data"],
            "/no/such/data: not a directory of IDX files",
        ),
        (
            vec!["--model", run, "--data", empty.path().to_str().unwrap()],
            "t10k-images-idx3-ubyte.gz: not found, nor without .gz",
        ),
    ] {
        let mut all = vec!["serve", "--port", "0"];
        all.extend(args);
        let out = serve_refusal(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{all:?}: {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
    }
}

/// `mnist-nn ARGS`, which must exit (refuse) within a minute rather than serve.
fn serve_refusal(args: &[&str]) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut child = Command::new(crate::util::bin())
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{args:?}: served instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// Reads from `stream` until the server closes it; how long that took.
fn time_to_close(mut stream: TcpStream) -> Duration {
    use std::io::Read;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    let mut sink = [0u8; 4096];
    loop {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[test]
fn a_connection_silent_for_10_seconds_is_closed() {
    let runs = tempfile::tempdir().unwrap();
    let address = server(runs.path());
    // Half a head, then nothing.
    let mut half = TcpStream::connect(&address).unwrap();
    half.write_all(b"GET /api/server HTTP/1.1\r\nHost: loc")
        .unwrap();
    // One whole request, then silence on the kept-alive connection.
    let mut kept = http::connect(&address);
    kept.write_all(&http::encode("GET", "/api/server", &[], &[]))
        .unwrap();
    let mut pending = Vec::new();
    assert_eq!(http::read_reply(&mut kept, &mut pending).status, 200);
    let waits = std::thread::scope(|scope| {
        let a = scope.spawn(|| time_to_close(half));
        let b = scope.spawn(|| time_to_close(kept));
        [a.join().unwrap(), b.join().unwrap()]
    });
    for wait in waits {
        // The limit is 10 s from the last byte; a second either side for scheduling.
        assert!(
            wait > Duration::from_secs(8) && wait < Duration::from_secs(13),
            "closed after {wait:?}"
        );
    }
}
