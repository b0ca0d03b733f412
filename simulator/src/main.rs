//! `simulator` binary: serves a seeded Apple Business API on 127.0.0.1.
//!
//! ```text
//! cargo run -p simulator -- --devices 100000 --port 0 --seed 42 [--time-scale N] [--key-out PATH]
//!                           [--dataset PATH] [--school]
//! ```
//! Prints the base URL, token URL, client id and key id, and writes the private
//! key PEM (mode 0600) to `--key-out` (default `./simulator-key.pem`).

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

#[derive(Debug)]
struct Args {
    devices: usize,
    port: u16,
    seed: u64,
    time_scale: f64,
    key_out: std::path::PathBuf,
    dataset: Option<std::path::PathBuf>,
    school: bool,
}

const USAGE: &str = "usage: simulator [--devices N] [--port P] [--seed S] [--time-scale F] [--key-out PATH] [--dataset PATH] [--school]";

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        devices: 1_000,
        port: 0,
        seed: 42,
        time_scale: 1.0,
        key_out: "simulator-key.pem".into(),
        dataset: None,
        school: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--devices" => {
                a.devices = value("--devices")?
                    .parse()
                    .map_err(|e| format!("--devices: {e}"))?
            }
            "--port" => {
                a.port = value("--port")?
                    .parse()
                    .map_err(|e| format!("--port: {e}"))?
            }
            "--seed" => {
                a.seed = value("--seed")?
                    .parse()
                    .map_err(|e| format!("--seed: {e}"))?
            }
            "--time-scale" => {
                a.time_scale = value("--time-scale")?
                    .parse()
                    .map_err(|e| format!("--time-scale: {e}"))?
            }
            "--key-out" => a.key_out = value("--key-out")?.into(),
            "--dataset" => a.dataset = Some(value("--dataset")?.into()),
            "--school" => a.school = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if a.time_scale.is_nan() || a.time_scale <= 0.0 {
        return Err("--time-scale must be > 0".into());
    }
    Ok(a)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return std::process::ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("simulator: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    // Loopback only: the simulator has no TLS and test hooks without auth.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await?;
    let mut builder = simulator::Simulator::builder()
        .seed(args.seed)
        .devices(args.devices)
        .time_scale(args.time_scale);
    if let Some(d) = &args.dataset {
        builder = builder.from_seed_dataset(d);
    }
    if args.school {
        builder = builder.school();
    }
    let sim = builder.serve(listener).await?;
    let creds = sim.credentials();
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&args.key_out)?;
    // `mode` only applies when the file is created; tighten an existing file too.
    std::fs::set_permissions(
        &args.key_out,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    file.write_all(creds.private_key_pem.as_bytes())?;
    let key_path = std::fs::canonicalize(&args.key_out)?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "base_url:  {}", sim.base_url())?;
    writeln!(out, "token_url: {}", sim.token_url())?;
    writeln!(out, "audience:  {}", sim.audience())?;
    writeln!(out, "client_id: {}", creds.client_id)?;
    writeln!(out, "key_id:    {}", creds.key_id)?;
    writeln!(out, "key_file:  {}", key_path.display())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c().await?;
    sim.shutdown().await;
    Ok(())
}
