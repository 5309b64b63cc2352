//! `store = etcd` (docs/cluster.md) against a real 3-member etcd cluster, a
//! real Knot and a real Pebble: three nodes (three state directories,
//! destinations and reload commands on this machine) running `--auto`
//! concurrently share one certificate, one order per renewal, and cleanup
//! waits for every node.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::process::{Command, Output};

use support::cycle::CycleEnv;
use support::etcd::{EtcdCluster, secret_file};

const WWW: &str = "www.example.test";

struct Nodes {
    env: CycleEnv,
    etcd: EtcdCluster,
    secret: std::path::PathBuf,
    confs: Vec<String>,
}

fn node_dir(env: &CycleEnv, i: usize) -> std::path::PathBuf {
    env.dir.path().join(format!("node{i}"))
}

/// The base configuration with node `i`'s state directory, destination,
/// store settings and reload command.
fn node_config(
    env: &CycleEnv,
    endpoints: &str,
    secret: &std::path::Path,
    i: usize,
    extra: &str,
    cert_extra: &str,
) -> String {
    let dir = node_dir(env, i);
    std::fs::create_dir_all(&dir).unwrap();
    let script = support::cdm::write_script(
        &dir,
        "reload.sh",
        &format!("echo \"$@\" >> {}/reloads.log\n", dir.display()),
    );
    // `extra` may set the endpoints or the secret file itself (keys may not repeat).
    let mut store = String::from("store = etcd\n");
    if !endpoints.is_empty() {
        store.push_str(&format!("storeendpoints = {endpoints}\n"));
    }
    if !extra.contains("storesecretfile") {
        store.push_str(&format!("storesecretfile = {}\n", secret.display()));
    }
    let base = env
        .base()
        .replace(
            &format!("statedir = {}", env.dir.path().join("state").display()),
            &format!(
                "statedir = {}\n{store}node = node{i}\n{extra}",
                dir.join("state").display(),
            ),
        )
        .replace(
            &format!("destination = {}", env.dest().display()),
            &format!("destination = {}", dir.join("certs").display()),
        );
    let text = format!(
        "{base}\n[cert:web]\n{cert_extra}[domain:{WWW}]\ncert = web\nip4 = 192.0.2.1\ntlsa.tcp.443 = auto:3:1:1\n\
         [service:app]\nhandler = command\ncommand = {} reload\n",
        script.display()
    );
    support::cdm::write_config(&dir, "cdm.conf", &text)
}

impl Nodes {
    fn start() -> Option<Nodes> {
        let etcd = EtcdCluster::start(3)?;
        let env = CycleEnv::start(&[])?;
        let secret = secret_file(env.dir.path(), "store.key");
        let mut nodes = Nodes {
            env,
            etcd,
            secret,
            confs: Vec::new(),
        };
        nodes.configure("storeleasettl = 2\n", "");
        nodes.env.advance(0);
        Some(nodes)
    }

    /// Writes every node's configuration with `extra` in `[cdm]` and
    /// `cert_extra` in `[cert:web]`.
    fn configure(&mut self, extra: &str, cert_extra: &str) {
        self.confs = (0..3)
            .map(|i| {
                node_config(
                    &self.env,
                    &self.etcd.endpoints(),
                    &self.secret,
                    i,
                    extra,
                    cert_extra,
                )
            })
            .collect();
    }

    fn command(&self, i: usize, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"));
        command
            .args(args)
            .arg(&self.confs[i])
            .envs(self.env.clock_env())
            .current_dir(self.env.dir.path());
        command
    }

    fn run(&self, i: usize, args: &[&str]) -> Output {
        self.command(i, args).output().unwrap()
    }

    /// `--auto` on every node at once; each must succeed.
    fn auto_all(&self) -> Vec<String> {
        let children: Vec<_> = (0..3)
            .map(|i| {
                self.command(i, &["--auto"])
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        children
            .into_iter()
            .enumerate()
            .map(|(i, child)| {
                let out = child.wait_with_output().unwrap();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                assert_eq!(out.status.code(), Some(0), "node{i}:\n{stderr}");
                stderr
            })
            .collect()
    }

    /// `--auto` on node `i` with `env` set; its exit status and log.
    fn auto_env(&self, i: usize, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
        let out = self
            .command(i, &["--auto"])
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn auto_ok(&self, i: usize) -> String {
        let out = self.run(i, &["--auto"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "node{i}:\n{stderr}");
        stderr
    }

    fn cert(&self, i: usize) -> Option<Vec<u8>> {
        std::fs::read(
            node_dir(&self.env, i)
                .join("certs")
                .join(WWW)
                .join("cert.pem"),
        )
        .ok()
    }

    fn reloads(&self, i: usize) -> usize {
        std::fs::read_to_string(node_dir(&self.env, i).join("reloads.log"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    fn tlsa(&self) -> usize {
        self.env.knot.dig(&format!("_443._tcp.{WWW}"), "TLSA").len()
    }
}

#[test]
fn three_nodes_share_one_order_one_certificate_and_cleanup_waits_for_all() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    // First: one node coordinates and orders; the others find it coordinating.
    let logs = nodes.auto_all();
    assert_eq!(nodes.env.orders(), 1, "exactly one order: {logs:#?}");
    assert_eq!(nodes.tlsa(), 1, "its TLSA record is published");
    assert!(
        (0..3).all(|i| nodes.cert(i).is_none()),
        "nothing deployed yet"
    );

    // Past twice the TTL: the coordinator rolls over; a further round lets
    // every node deploy the same certificate, each reloading once.
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.env.advance(60);
    nodes.auto_all();
    let first = nodes.cert(0).expect("node0 deployed");
    for i in 0..3 {
        assert_eq!(
            nodes.cert(i).as_ref(),
            Some(&first),
            "node{i} holds the same certificate"
        );
        assert_eq!(nodes.reloads(i), 1, "node{i} reloaded once");
        support::deployed_pair(&node_dir(&nodes.env, i).join("certs").join(WWW))
            .map(|(a, b)| assert_eq!(a, b, "node{i}: key and certificate match"))
            .unwrap();
    }
    assert_eq!(nodes.env.orders(), 1);

    // The renewal (Pebble's certificates age on the real clock only, so a
    // renewdays longer than their life makes it due): one more order,
    // whichever nodes run.
    nodes.configure("storeleasettl = 2\n", "renewdays = 3650\nari = no\n");
    nodes.env.advance(60);
    nodes.auto_all();
    nodes.auto_all();
    nodes.configure("storeleasettl = 2\n", "");
    assert_eq!(nodes.env.orders(), 2, "exactly one order for the renewal");
    assert_eq!(nodes.tlsa(), 2, "old and new TLSA records side by side");

    // Node 2 stays away: nodes 0 and 1 roll over, but the old record and the
    // old material stay, however long they wait.
    nodes.env.advance(3600);
    nodes.auto_ok(0);
    nodes.auto_ok(1);
    nodes.auto_ok(0);
    let renewed = nodes.cert(0).expect("deployed");
    assert_ne!(renewed, first);
    assert_eq!(nodes.cert(1).as_ref(), Some(&renewed));
    assert_eq!(nodes.cert(2).as_ref(), Some(&first), "node2 did not run");
    nodes.env.advance(7 * 3600);
    let held = nodes.auto_ok(0);
    assert!(
        held.contains("cleanup waits until node node2 deployed"),
        "{held}"
    );
    assert_eq!(
        nodes.tlsa(),
        2,
        "the old TLSA record stays while node2 has the old certificate: {held}\n{:?}",
        nodes.env.knot.dig(&format!("_443._tcp.{WWW}"), "TLSA")
    );
    assert_eq!(nodes.env.orders(), 2, "{held}");
    let status = nodes.run(0, &["--status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(shown.contains("node node2"), "{shown}");
    assert!(shown.contains("NOT current"), "{shown}");

    // Node 2 deploys; then cleanup goes ahead.
    nodes.auto_ok(2);
    assert_eq!(nodes.cert(2).as_ref(), Some(&renewed));
    assert_eq!(nodes.reloads(2), 2, "node2 reloaded once per rollover");
    nodes.env.advance(3600);
    nodes.auto_ok(1);
    assert_eq!(
        nodes.tlsa(),
        1,
        "the old TLSA record is gone once every node deployed"
    );
    assert_eq!(nodes.env.orders(), 2, "no order that was not due");
    for i in 0..3 {
        assert_eq!(nodes.reloads(i), 2, "node{i}: one reload per rollover");
    }
}

#[test]
fn a_coordinator_killed_mid_prepare_is_replaced_after_its_lease_without_a_second_order() {
    use std::os::unix::process::ExitStatusExt;
    for step in [
        "prepare:key-written",
        "prepare:order-created",
        "dns01:published",
        "prepare:issued",
        "zone:applied",
    ] {
        let Some(mut nodes) = Nodes::start() else {
            return;
        };
        nodes.configure("storeleasettl = 4\n", "");
        let (status, log) = nodes.auto_env(0, &[("CRYPTDOMAINMGR_CRASH_AT", step)]);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{step}: not reached:\n{log}"
        );
        let before = nodes.env.orders();
        // While the dead coordinator's lease runs, another node only deploys.
        let waiting = nodes.auto_ok(1);
        assert!(
            waiting.contains("node node0 coordinates now"),
            "{step}: {waiting}"
        );
        assert_eq!(
            nodes.env.orders(),
            before,
            "{step}: no order while the lease runs"
        );
        std::thread::sleep(std::time::Duration::from_secs(5));
        let took_over = nodes.auto_ok(1);
        assert!(
            took_over.contains("node node1 coordinates this run"),
            "{step}: {took_over}"
        );
        assert!(
            nodes.env.orders() <= 1,
            "{step}: {} orders for one certificate: {took_over}",
            nodes.env.orders()
        );
        assert!(
            nodes
                .env
                .knot
                .dig(&format!("_acme-challenge.{WWW}"), "TXT")
                .is_empty(),
            "{step}: a challenge record was left"
        );
        assert_eq!(nodes.tlsa(), 1, "{step}: the TLSA record is published");
        // Everything rolls over on every node with the key the order used.
        nodes.env.advance(3600);
        nodes.auto_all();
        nodes.auto_all();
        for i in 0..3 {
            let (cert, key) =
                support::deployed_pair(&node_dir(&nodes.env, i).join("certs").join(WWW))
                    .unwrap_or_else(|e| panic!("{step}: node{i}: {e}"));
            assert_eq!(
                cert, key,
                "{step}: node{i}: the deployed pair does not match"
            );
        }
        assert_eq!(nodes.env.orders(), 1, "{step}: exactly one order");
    }
}

#[test]
fn one_member_down_is_no_matter_and_without_quorum_every_node_stops_and_deletes_nothing() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    nodes.auto_all();
    // The member every node asks first is gone: the others answer.
    nodes.etcd.kill(0);
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.auto_all();
    let cert = nodes.cert(0).expect("deployed with one member down");
    assert!((0..3).all(|i| nodes.cert(i).as_ref() == Some(&cert)));
    assert_eq!(nodes.env.orders(), 1);

    // Two of three gone: no quorum. Each node says so, naming the
    // endpoints, and changes nothing.
    nodes.etcd.kill(1);
    nodes.env.advance(30 * 86_400);
    let serial = nodes.env.knot.serial("example.test");
    for i in 0..3 {
        let (status, log) = nodes.auto_env(i, &[]);
        assert_eq!(status.code(), Some(1), "node{i}: {log}");
        assert!(log.contains("no quorum"), "node{i}: {log}");
        assert!(
            log.contains(&format!("127.0.0.1:{}", nodes.etcd.members[2].client_port)),
            "node{i}: {log}"
        );
        assert!(
            log.contains("deployed material is left as it is")
                || log.contains("nothing was changed"),
            "{log}"
        );
        assert_eq!(nodes.cert(i).as_ref(), Some(&cert), "node{i} keeps serving");
    }
    assert_eq!(
        nodes.env.knot.serial("example.test"),
        serial,
        "no DNS change"
    );
    assert_eq!(nodes.tlsa(), 1);
    assert_eq!(nodes.env.orders(), 1);
}

/// Whether process `pid` is stopped (SIGSTOP).
fn stopped(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('T'))
        })
        .unwrap_or(false)
}

/// Starts node0 with `args`, paused (SIGSTOP) right after it wrote the
/// order's key as coordinator; returns once it has stopped there.
fn paused_after_key_written(nodes: &Nodes, args: &[&str]) -> std::process::Child {
    let paused = nodes
        .command(0, args)
        .env("CRYPTDOMAINMGR_PAUSE_AT", "prepare:key-written")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !stopped(paused.id()) {
        assert!(
            std::time::Instant::now() < until,
            "node0 never reached the pause point"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    paused
}

#[test]
fn a_paused_coordinator_whose_lease_expired_cannot_write() {
    let Some(nodes) = Nodes::start() else {
        return;
    };
    // node0 coordinates and stops right after writing the order's key.
    let paused = paused_after_key_written(&nodes, &["--auto"]);
    // Its lease expires; node1 takes over and issues.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let took = nodes.auto_ok(1);
    assert!(took.contains("node node1 coordinates this run"), "{took}");
    assert_eq!(nodes.env.orders(), 1);
    let state = nodes.etcd.get("/cryptdomainmgr/state").expect("a state");
    let files = nodes
        .etcd
        .etcdctl(&["get", "--prefix", "/cryptdomainmgr/files/"])
        .stdout;

    // node0 resumes: every write it tries is refused; it says why and fails.
    let pid = i32::try_from(paused.id()).unwrap();
    support::sys::signal(pid, libc::SIGCONT);
    let out = paused.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(log.contains("lost the coordinator lease"), "{log}");
    assert_eq!(
        nodes.etcd.get("/cryptdomainmgr/state").as_deref(),
        Some(state.as_str()),
        "the fenced node wrote the state"
    );
    assert_eq!(
        nodes
            .etcd
            .etcdctl(&["get", "--prefix", "/cryptdomainmgr/files/"])
            .stdout,
        files,
        "the fenced node wrote material"
    );
    assert_eq!(nodes.env.orders(), 1, "the fenced node placed no order");
}

#[test]
fn nothing_in_etcd_is_readable_key_material_or_a_secret() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    // A DKIM key and DH parameters too, each node with its own key location.
    let sections = |i: usize| {
        let dir = node_dir(&nodes.env, i);
        format!(
            "[dkim:mail]\nkeytype = ed25519\nkeylocation = {0}/dkim\nsigningconfdestinationfile = {0}/rspamd/dkim_signing.conf\n\
             [dhparam:web]\nhandler = ffdhe\nfilename = {0}/dh.pem\n",
            dir.display()
        )
    };
    let extra: Vec<String> = (0..3).map(sections).collect();
    nodes.configure("storeleasettl = 2\n", "");
    for (i, conf) in nodes.confs.iter().enumerate() {
        let text = std::fs::read_to_string(conf).unwrap();
        let text = text.replace("ip4 = 192.0.2.1\n", "ip4 = 192.0.2.1\ndkim = auto:mail\n");
        std::fs::write(conf, format!("{text}{}", extra[i])).unwrap();
    }
    nodes.auto_all();
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.auto_all();
    let signing = |i: usize| {
        std::fs::read_to_string(node_dir(&nodes.env, i).join("rspamd/dkim_signing.conf"))
            .unwrap_or_default()
    };
    let selector = signing(0)
        .lines()
        .find(|l| l.trim_start().starts_with("selector"))
        .and_then(|l| l.split('"').nth(1).map(str::to_string))
        .expect("node0 installed the DKIM key");
    let key_file = node_dir(&nodes.env, 0)
        .join("dkim")
        .join(format!("{selector}.key"));
    let dkim_key = std::fs::read_to_string(&key_file).expect("the DKIM key");
    for i in 1..3 {
        assert!(
            signing(i).contains(&selector),
            "node{i} signs with the same selector"
        );
        let theirs = node_dir(&nodes.env, i)
            .join("dkim")
            .join(format!("{selector}.key"));
        assert_eq!(
            std::fs::read_to_string(theirs).ok().as_ref(),
            Some(&dkim_key),
            "node{i}"
        );
        assert_eq!(
            std::fs::read(node_dir(&nodes.env, i).join("dh.pem")).ok(),
            std::fs::read(node_dir(&nodes.env, 0).join("dh.pem")).ok()
        );
    }

    let dump = nodes.etcd.dump();
    assert!(dump.contains("files/"), "the material is in etcd: {dump}");
    assert!(
        dump.contains("privkey.pem"),
        "the certificate key is in etcd (sealed)"
    );
    assert!(dump.contains("cdm1:"), "sealed values");
    assert!(!dump.contains("PRIVATE KEY"), "a PEM private key in clear");
    assert!(!dump.contains("BEGIN"), "PEM in clear");
    let body: String = dkim_key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    assert!(
        body.len() > 20 && !dump.contains(&body),
        "the DKIM key in clear"
    );
    let tsig = nodes.env.knot.secret().to_string();
    assert!(!dump.contains(&tsig), "the TSIG secret");
    let sealing = std::fs::read_to_string(&nodes.secret).unwrap();
    assert!(!dump.contains(sealing.trim()), "the sealing key");
}

#[test]
fn bad_store_settings_are_named_with_endpoint_and_cause_and_change_nothing() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    nodes.auto_all();
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.auto_all();
    let cert = nodes.cert(0).expect("deployed");
    let serial = nodes.env.knot.serial("example.test");
    let state_dir = node_dir(&nodes.env, 0).join("state");
    let before = support::walk(&state_dir).len();
    let fails = |nodes: &Nodes, extra: &str, wanted: &[&str]| {
        let conf = node_config(&nodes.env, "", &nodes.secret, 0, extra, "");
        let out = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
            .args(["--auto", &conf])
            .envs(nodes.env.clock_env())
            .output()
            .unwrap();
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(1), "{extra}: {log}");
        for w in wanted {
            assert!(log.contains(w), "{extra}: no {w:?} in\n{log}");
        }
        assert_eq!(
            nodes.cert(0).as_ref(),
            Some(&cert),
            "{extra}: deployed material touched"
        );
        assert_eq!(
            nodes.env.knot.serial("example.test"),
            serial,
            "{extra}: DNS changed"
        );
        assert_eq!(
            support::walk(&state_dir).len(),
            before,
            "{extra}: state directory changed"
        );
    };
    let port = support::free_port();
    let endpoints = nodes.etcd.endpoints();
    fails(
        &nodes,
        &format!("storeendpoints = http://127.0.0.1:{port}\n"),
        &[&format!("http://127.0.0.1:{port}"), "onnection refused"],
    );
    let other = secret_file(nodes.env.dir.path(), "other.key");
    fails(
        &nodes,
        &format!(
            "storeendpoints = {endpoints}\nstoresecretfile = {}\n",
            other.display()
        ),
        &["does not decrypt", &other.display().to_string()],
    );
    std::fs::write(nodes.env.dir.path().join("short.key"), "c2hvcnQ=").unwrap();
    fails(
        &nodes,
        &format!(
            "storeendpoints = {endpoints}\nstoresecretfile = {}\n",
            nodes.env.dir.path().join("short.key").display()
        ),
        &["5 bytes, 32 are needed"],
    );

    // Authentication on: a wrong password is named, the right one works.
    nodes.etcd.enable_auth("right-password");
    fails(
        &nodes,
        &format!("storeendpoints = {endpoints}\nstoreuser = root\nstorepassword = wrong\n"),
        &["authentication failed", "127.0.0.1"],
    );
    let conf = node_config(
        &nodes.env,
        "",
        &nodes.secret,
        0,
        &format!(
            "storeendpoints = {endpoints}\nstoreuser = root\nstorepassword = right-password\n"
        ),
        "",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
        .args(["--auto", &conf])
        .envs(nodes.env.clock_env())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_store_with_an_untrusted_certificate_is_refused_naming_the_endpoint() {
    let Some(etcd) = EtcdCluster::start_tls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let secret = secret_file(dir.path(), "store.key");
    let other_ca = tempfile::tempdir().unwrap();
    support::pebble::make_tls_certs(other_ca.path());
    let run = |cacert: &std::path::Path| {
        let conf = support::cdm::write_config(
            dir.path(),
            "cdm.conf",
            &format!(
                "[cdm]\nstatedir = {}\nstore = etcd\nstoreendpoints = {}\nstoresecretfile = {}\nstorecacert = {}\nnode = a\n",
                dir.path().join("state").display(),
                etcd.endpoints(),
                secret.display(),
                cacert.display()
            ),
        );
        let out = Command::new(env!("CARGO_BIN_EXE_cryptdomainmgr"))
            .args(["--auto", &conf])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, log) = run(&other_ca.path().join("ca.pem"));
    assert_eq!(code, Some(1), "{log}");
    assert!(log.contains(&etcd.endpoints()), "{log}");
    assert!(log.to_lowercase().contains("certificate"), "{log}");
    let (code, log) = run(etcd.ca.as_ref().unwrap());
    assert_eq!(code, Some(0), "{log}");
}

#[test]
fn a_node_gone_past_nodetimeout_is_named_and_holds_cleanup_until_forgotten() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    nodes.configure("storeleasettl = 2\nnodetimeout = 2d\n", "");
    nodes.auto_all();
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.auto_all();
    // A renewal that node2 never takes up: it is gone.
    nodes.configure(
        "storeleasettl = 2\nnodetimeout = 2d\n",
        "renewdays = 3650\nari = no\n",
    );
    nodes.auto_ok(0);
    nodes.configure("storeleasettl = 2\nnodetimeout = 2d\n", "");
    nodes.env.advance(3600);
    nodes.auto_ok(0);
    nodes.auto_ok(1);
    nodes.env.advance(3 * 86_400);
    nodes.auto_ok(1);
    let log = nodes.auto_ok(0);
    assert!(
        log.contains("node node2 has not been in contact since"),
        "{log}"
    );
    assert_eq!(nodes.tlsa(), 2, "node2 holds cleanup back: {log}");
    let status = nodes.run(0, &["--status"]);
    let shown = String::from_utf8_lossy(&status.stdout);
    assert!(
        shown.contains("node node2") && shown.contains("GONE"),
        "{shown}"
    );

    // An unknown name is refused; node2 is forgotten, and cleanup goes on.
    let unknown = nodes.run(0, &["--forget-node", "node9"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("node0, node1, node2"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let forgot = nodes.run(0, &["--forget-node", "node2"]);
    assert_eq!(
        forgot.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&forgot.stderr)
    );
    nodes.auto_ok(0);
    assert_eq!(nodes.tlsa(), 1, "cleanup no longer waits for node2");
    let status = nodes.run(0, &["--status"]);
    assert!(!String::from_utf8_lossy(&status.stdout).contains("node node2"));
}

/// Every file under the nodes' directories with its content.
fn files_of(nodes: &Nodes) -> std::collections::BTreeMap<std::path::PathBuf, Vec<u8>> {
    (0..3)
        .flat_map(|i| support::walk(&node_dir(&nodes.env, i)))
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// The live registrations in etcd: node name and lease ID.
fn live_leases(nodes: &Nodes) -> std::collections::BTreeMap<String, i64> {
    let out = nodes
        .etcd
        .etcdctl(&["get", "--prefix", "/cryptdomainmgr/live/", "-w", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let b64 = |v: &serde_json::Value| {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    };
    value["kvs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let key = b64(&kv["key"]);
            let name = key.trim_start_matches("/cryptdomainmgr/live/").to_string();
            (name, kv["lease"].as_i64().unwrap_or(0))
        })
        .collect()
}

/// `--status --json` of node `i`, parsed.
fn status_json(nodes: &Nodes, i: usize) -> serde_json::Value {
    let out = nodes.run(i, &["--status", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn nodes_register_on_leases_of_their_own_and_status_shows_which_are_live() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    let settings = "storeleasettl = 2\nnodettl = 5s\nnodetimeout = 2d\n";
    nodes.configure(settings, "");
    nodes.auto_all();
    nodes.env.advance(3600);
    nodes.auto_all();
    nodes.env.advance(60);
    nodes.auto_all();
    // Every node's registration is a key on a lease of its own.
    let leases = live_leases(&nodes);
    assert_eq!(
        leases.keys().collect::<Vec<_>>(),
        ["node0", "node1", "node2"],
        "{leases:?}"
    );
    assert!(leases.values().all(|l| *l != 0), "{leases:?}");
    let distinct: std::collections::BTreeSet<_> = leases.values().collect();
    assert_eq!(distinct.len(), 3, "one lease per node: {leases:?}");
    // A run within the lease's time renews the same lease.
    nodes.auto_ok(0);
    assert_eq!(live_leases(&nodes).get("node0"), leases.get("node0"));

    // No run for longer than nodettl: the registrations are gone from etcd.
    std::thread::sleep(std::time::Duration::from_secs(7));
    assert!(live_leases(&nodes).is_empty(), "{:?}", live_leases(&nodes));
    nodes.auto_ok(0);
    nodes.auto_ok(1);
    let leases = live_leases(&nodes);
    assert_eq!(
        leases.keys().collect::<Vec<_>>(),
        ["node0", "node1"],
        "{leases:?}"
    );
    let shown = String::from_utf8_lossy(&nodes.run(0, &["--status"]).stdout).into_owned();
    let line = |name: &str| {
        shown
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("node {name}")))
            .unwrap_or_else(|| panic!("no line for {name}: {shown}"))
            .to_string()
    };
    assert!(line("node0").contains(": live"), "{shown}");
    assert!(line("node2").contains("not live"), "{shown}");
    assert!(
        !line("node2").contains("GONE"),
        "not past nodetimeout: {shown}"
    );

    // Past nodetimeout on the program's clock, node2 is gone as well.
    nodes.env.advance(3 * 86_400);
    nodes.auto_ok(0);
    nodes.auto_ok(1);
    let status = status_json(&nodes, 0);
    let cluster = &status["cluster"];
    let list = cluster["nodes"]
        .as_array()
        .expect("nodes in --status --json");
    let node = |name: &str| {
        list.iter()
            .find(|n| n["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {cluster}"))
    };
    let fingerprint = cluster["generations"]["cert:web"]
        .as_str()
        .expect("the certificate's generation")
        .to_string();
    assert_eq!(node("node0")["live"], true, "{cluster}");
    assert_eq!(node("node0")["this_node"], true, "{cluster}");
    assert_eq!(node("node0")["gone"], false, "{cluster}");
    assert_eq!(node("node1")["this_node"], false, "{cluster}");
    assert_eq!(node("node2")["live"], false, "{cluster}");
    assert_eq!(node("node2")["gone"], true, "{cluster}");
    let contact = |name: &str| {
        chrono::DateTime::parse_from_rfc3339(node(name)["last_contact"].as_str().unwrap()).unwrap()
    };
    assert!(
        contact("node0") - contact("node2") >= chrono::Duration::days(3),
        "{cluster}"
    );
    for name in ["node0", "node1", "node2"] {
        let deployed = &node(name)["deployed"]["cert:web"];
        assert_eq!(deployed["generation"], fingerprint.as_str(), "{cluster}");
        assert_eq!(deployed["current"], true, "{cluster}");
    }
    let shown = String::from_utf8_lossy(&nodes.run(0, &["--status"]).stdout).into_owned();
    assert!(
        shown
            .lines()
            .any(|l| l.contains("node node2") && l.contains("not live") && l.contains("GONE")),
        "{shown}"
    );

    // Forgetting a node removes its record and its registration.
    let forgot = nodes.run(0, &["--forget-node", "node1"]);
    assert_eq!(forgot.status.code(), Some(0));
    assert!(!live_leases(&nodes).contains_key("node1"));
    assert!(nodes.etcd.get("/cryptdomainmgr/nodes/node1").is_none());
}

#[test]
fn a_dry_run_says_what_the_coordinator_and_each_node_would_do_and_changes_nothing() {
    let Some(nodes) = Nodes::start() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dry = |i: usize, args: &[&str]| {
        let out = nodes
            .command(i, args)
            .env("TMPDIR", tmp.path())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stdout, stderr)
    };
    nodes.auto_all();
    nodes.env.advance(3600);
    // The rollover is allowed now: a dry run on node1 says that it would
    // coordinate and deploy, and writes nothing anywhere.
    let dump = nodes.etcd.dump();
    let files = files_of(&nodes);
    let (code, said, log) = dry(1, &["--auto", "--dry-run"]);
    assert_eq!(code, Some(0), "{said}\n{log}");
    assert!(said.contains("node node1 would coordinate"), "{said}");
    let dest = node_dir(&nodes.env, 1).join("certs").join(WWW);
    assert!(
        said.contains("cert web: deploy serial") && said.contains(&dest.display().to_string()),
        "{said}"
    );
    assert_eq!(nodes.etcd.dump(), dump, "a dry run wrote to etcd");
    assert_eq!(files_of(&nodes), files, "a dry run wrote to disk");
    assert!(
        std::fs::read_dir(tmp.path()).unwrap().next().is_none(),
        "the private scratch directory was left behind"
    );
    assert_eq!(nodes.env.orders(), 1);

    // What it said happens: node1 rolls over.
    nodes.auto_ok(1);
    assert!(nodes.cert(1).is_some(), "node1 deployed");
    assert!(nodes.cert(2).is_none());

    // node2 would deploy the new certificate and reload its service.
    let dump = nodes.etcd.dump();
    let files = files_of(&nodes);
    let (code, said, log) = dry(2, &["--auto", "--dry-run"]);
    assert_eq!(code, Some(0), "{said}\n{log}");
    assert!(
        said.contains("node node2: [cert:web] deploy the cluster's current material"),
        "{said}"
    );
    assert!(said.contains("node node2: [service:app] reload"), "{said}");
    // A phase's dry run is the coordinator's plan of that phase.
    let (code, said_prepare, log) = dry(2, &["--prepare", "--dry-run"]);
    assert_eq!(code, Some(0), "{said_prepare}\n{log}");
    assert!(log.contains("Running phase: prepare (dry run"), "{log}");
    assert_eq!(nodes.etcd.dump(), dump, "a dry run wrote to etcd");
    assert_eq!(files_of(&nodes), files, "a dry run wrote to disk");
    assert!(nodes.cert(2).is_none());
    assert_eq!(nodes.reloads(2), 0);
    nodes.auto_ok(2);
    assert_eq!(nodes.cert(2), nodes.cert(1));
    assert_eq!(nodes.reloads(2), 1);
}

#[test]
fn single_phases_run_on_the_coordinator_and_adopt_is_refused_with_the_way_to_do_it() {
    use std::os::unix::process::ExitStatusExt;
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    nodes.configure("storeleasettl = 10\n", "");
    // --prepare on node0 orders; --rollover on node1 before the records had
    // their time is refused, later it rolls over for node1.
    let out = nodes.run(0, &["--prepare"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("node node0 coordinates this run"), "{log}");
    assert_eq!(nodes.env.orders(), 1);
    assert_eq!(nodes.tlsa(), 1);
    let early = nodes.run(1, &["--rollover"]);
    assert_eq!(
        early.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    assert!(nodes.cert(1).is_none());
    nodes.env.advance(3600);
    let out = nodes.run(1, &["--rollover"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(nodes.cert(1).is_some(), "{log}");
    // --next after a completed rollover is cleanup, on any node.
    let out = nodes.run(2, &["--next"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(log.contains("Running phase: cleanup"), "{log}");
    assert_eq!(nodes.cert(2), nodes.cert(1), "node2 deployed first");
    assert_eq!(nodes.env.orders(), 1);

    // While another node coordinates, a phase is refused, naming it; the
    // node still deploys.
    let paused = paused_after_key_written(&nodes, &["--auto", "--force"]);
    let out = nodes.run(1, &["--prepare"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    let pid = i32::try_from(paused.id()).unwrap();
    support::sys::signal(pid, libc::SIGKILL);
    let killed = paused.wait_with_output().unwrap();
    assert_eq!(killed.status.signal(), Some(libc::SIGKILL));
    assert_eq!(out.status.code(), Some(1), "{log}");
    assert!(
        log.contains("node node0 coordinates now, and only the coordinator runs a phase"),
        "{log}"
    );

    let out = nodes.run(1, &["--adopt"]);
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{log}");
    assert!(
        log.contains("adopt on one host with store = local, then switch it to store = etcd"),
        "{log}"
    );
}

#[test]
fn a_node_stays_live_through_a_run_longer_than_its_nodettl() {
    let Some(mut nodes) = Nodes::start() else {
        return;
    };
    nodes.configure("storeleasettl = 2\nnodettl = 2s\n", "");
    nodes.auto_ok(0);
    nodes.env.advance(3600);
    // node1's rollover reloads a service that takes 6 s: three times its nodettl.
    let dir = node_dir(&nodes.env, 1);
    let started = dir.join("reload-started");
    support::cdm::write_script(
        &dir,
        "reload.sh",
        &format!(
            "touch {}\nsleep 6\necho \"$@\" >> {}/reloads.log\n",
            started.display(),
            dir.display()
        ),
    );
    let child = nodes
        .command(1, &["--auto"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !started.exists() {
        assert!(std::time::Instant::now() < until, "node1 never reloaded");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    let during = live_leases(&nodes);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        during.contains_key("node1"),
        "node1 was not live during its run: {during:?}"
    );
    assert_eq!(nodes.reloads(1), 1);
}
