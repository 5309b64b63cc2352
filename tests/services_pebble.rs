//! Reloads after real certificate rollovers: certificates issued by a real
//! Pebble validating against a real Knot, a real nginx reloaded through a
//! `command` service, traefik's dynamic configuration, and the order of
//! reloads when a service uses several certificates.

// In tests a failed unwrap is a failed test, and nothing is reachable from outside.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::cdm::write_script;
use support::cycle::CycleEnv;
use support::nginx::NginxEnv;

/// The base64 body of a PEM certificate, for comparing encodings.
fn pem_body(pem: &str) -> String {
    pem.lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Polls until nginx serves `expected` (PEM) for `name`, with a deadline.
fn wait_served(nginx: &NginxEnv, name: &str, expected: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut served = None;
    while Instant::now() < deadline {
        served = nginx.served_certificate(name);
        if served.as_deref().map(pem_body) == Some(pem_body(expected)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "nginx does not serve the expected certificate; it serves {served:?}\n{}",
        nginx.log()
    );
}

#[test]
fn nginx_serves_the_new_certificate_after_rollover() {
    if !support::require("nginx") {
        return;
    }
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let dh = env.dir.path().join("dh.pem");
    let material = format!(
        "\n[cert:web]\n[domain:www.example.test]\ncert = web\n[dhparam:dh]\nhandler = ffdhe\nfilename = {}\n",
        dh.display()
    );
    let conf = env.config(&material);
    env.run_ok(&["--prepare", &conf]);
    env.run_ok(&["--rollover", &conf]);

    let site = env.dest().join("www.example.test");
    let Some(nginx) = NginxEnv::start(
        "www.example.test",
        &site.join("fullchain.pem"),
        &site.join("privkey.pem"),
        &dh,
    ) else {
        return;
    };
    let first = read(&site.join("cert.pem"));
    wait_served(&nginx, "www.example.test", &first);

    // The next cycle, with nginx reloaded by its own command.
    let conf = env.config_as(
        "cdm2.conf",
        &format!(
            "{material}[service:web]\nhandler = command\ncommand = {} -c {} -e {} -s reload\n",
            // nginx lives in sbin, which a user's PATH may lack.
            support::find_binary("nginx").expect("nginx").display(),
            nginx.config_path().display(),
            nginx.error_log_path().display()
        ),
    );
    env.run_ok(&["--prepare", "--force", &conf]);
    assert_eq!(
        nginx
            .served_certificate("www.example.test")
            .map(|c| pem_body(&c)),
        Some(pem_body(&first)),
        "prepare changes nothing nginx serves"
    );
    let run = env.run_ok(&["--rollover", &conf]);
    let second = read(&site.join("cert.pem"));
    assert_ne!(pem_body(&first), pem_body(&second));
    wait_served(&nginx, "www.example.test", &second);
    assert!(
        run.stderr.contains("[service:web] running /") && run.stderr.contains("nginx -c"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_service_using_two_certificates_reloads_once_after_both() {
    let Some(env) = CycleEnv::start(&[]) else {
        return;
    };
    let dir = env.dir.path();
    let dh = dir.join("dh.pem");
    let web = env.dest().join("www.example.test/fullchain.pem");
    let mail = env.dest().join("mail.example.test/fullchain.pem");
    let log = dir.join("reloads.log");
    // Records, at the moment it runs, what is at each path the service uses.
    let check = write_script(
        dir,
        "check-material",
        &format!(
            "for f in {web} {mail} {dh}; do\n  if [ -e \"$f\" ]; then sha256sum < \"$f\" | cut -c1-64; else echo missing; fi\ndone | tr '\\n' ' ' >> {log}\necho >> {log}\n",
            web = web.display(),
            mail = mail.display(),
            dh = dh.display(),
            log = log.display()
        ),
    );
    let traefik_dir = dir.join("traefik");
    let conf = env.config_as(
        "cdm.conf",
        &format!(
            "\n[cert:web]\n[cert:mail]\n\
             [domain:www.example.test]\ncert = web\n[domain:mail.example.test]\ncert = mail\n\
             [dhparam:dh]\nhandler = ffdhe\nfilename = {dh}\n\
             [service:both]\nhandler = command\ncommand = {check}\ncert = web, mail\n\
             [service:proxy]\nhandler = traefik\nconfigdir = {traefik}\n",
            dh = dh.display(),
            check = check.display(),
            traefik = traefik_dir.display()
        ),
    );
    let sums = || -> String {
        [&web, &mail, &dh]
            .iter()
            .map(|f| {
                let out = std::process::Command::new("sha256sum")
                    .arg(f)
                    .output()
                    .expect("sha256sum");
                String::from_utf8_lossy(&out.stdout)[..64].to_string() + " "
            })
            .collect()
    };
    let reloads = || -> Vec<String> {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    };

    env.run_ok(&["--prepare", &conf]);
    assert!(reloads().is_empty());
    env.run_ok(&["--rollover", &conf]);
    // One reload, when both certificates and the DH file were in place.
    assert_eq!(reloads(), [sums()]);
    check_traefik(&env, &traefik_dir.join("cryptdomainmgr-proxy.toml"));

    // The next cycle: one more reload, after both new certificates.
    let before = sums();
    env.run_ok(&["--prepare", "--force", &conf]);
    env.run_ok(&["--rollover", &conf]);
    let after = sums();
    assert_ne!(before, after);
    assert_eq!(reloads(), [before, after]);
    check_traefik(&env, &traefik_dir.join("cryptdomainmgr-proxy.toml"));
}

/// The dynamic configuration parses as TOML and names each certificate's full
/// chain and key at its destination.
fn check_traefik(env: &CycleEnv, file: &Path) {
    let text = read(file);
    let parsed: toml::Table = text.parse().unwrap_or_else(|e| panic!("{e}\n{text}"));
    let certs = parsed["tls"]["certificates"]
        .as_array()
        .unwrap_or_else(|| panic!("no tls.certificates in\n{text}"));
    let mut pairs: Vec<(String, String)> = certs
        .iter()
        .map(|c| {
            (
                c["certFile"].as_str().unwrap().to_string(),
                c["keyFile"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    pairs.sort();
    let expect = |name: &str| {
        let dir = env.dest().join(name);
        (
            dir.join("fullchain.pem").display().to_string(),
            dir.join("privkey.pem").display().to_string(),
        )
    };
    assert_eq!(
        pairs,
        [expect("mail.example.test"), expect("www.example.test")],
        "{text}"
    );
    for (cert, key) in &pairs {
        assert!(Path::new(cert).is_file() && Path::new(key).is_file());
    }
}
