//! `store = etcd` (docs/cluster.md) against a real 3-member etcd cluster, a
//! real Knot and a real Pebble: three nodes (three state directories,
//! destinations and reload commands on this machine) running `--auto`
//! concurrently share one certificate, one order per renewal, and cleanup
//! waits for every node.

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
    let base = env
        .base()
        .replace(
            &format!("statedir = {}", env.dir.path().join("state").display()),
            &format!(
                "statedir = {}\nstore = etcd\nstoreendpoints = {endpoints}\nstoresecretfile = {}\nnode = node{i}\n{extra}",
                dir.join("state").display(),
                secret.display()
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
