//! One module per command.

mod agent;
mod bench;
mod cloud;
mod demo;
pub mod doctor;
mod fleet_client;
pub mod init;
pub mod measure;
pub mod publish;
mod recover;
mod remote;
mod resume;
mod run;
mod runs;
mod server;
mod server_client;
mod sim;
mod validate;
pub mod validate_scopes;

use std::io::Write;

use clap::CommandFactory;

use crate::cli::{AgentCommand, BenchCommand, Cli, Command, RunsCommand, SchemaKind, SimCommand};

/// Runs a command and returns the process exit code.
pub fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Validate(args) => validate::validate(args),
        Command::Demo(args) => demo::demo(args),
        Command::Init(args) => init::init(args),
        Command::Doctor(args) => doctor::doctor(args),
        Command::Measure(args) => measure::measure(args),
        Command::Sim(SimCommand::Dut(args)) => sim::dut(args),
        Command::Sim(SimCommand::HttpRelay(args)) => sim::http_relay(args),
        Command::Sim(SimCommand::Modbus(args)) => sim::modbus(args),
        Command::Sim(SimCommand::Slcan(args)) => sim::slcan(args),
        Command::Sim(SimCommand::Scpi(args)) => sim::scpi(args),
        Command::Sim(SimCommand::Bus(args)) => sim::bus(args),
        Command::Runs(RunsCommand::Status { dir, json }) => runs::status(&dir, json),
        Command::Runs(RunsCommand::Publish(args)) => {
            let cancel = hilt_hw::CancelToken::new();
            crate::signals::cancel_on_signals(&cancel);
            publish::publish(args, &cancel)
        }
        Command::Runs(RunsCommand::Resume { dir, verbose, json }) => {
            resume::resume(&dir, verbose, json)
        }
        Command::Runs(RunsCommand::Recover { dir, json }) => recover::recover(&dir, json),
        Command::Runs(RunsCommand::Submit(args)) => server_client::submit(args),
        Command::Runs(RunsCommand::Show { id, conn }) => server_client::show(&id, &conn),
        Command::Runs(RunsCommand::List(conn)) => server_client::list(&conn),
        Command::Runs(RunsCommand::Events { id, conn }) => server_client::events(&id, &conn),
        Command::Runs(RunsCommand::Cancel { id, conn }) => server_client::cancel(&id, &conn),
        Command::Runs(RunsCommand::Download { id, output, conn }) => {
            server_client::download(&id, output, &conn)
        }
        Command::Agents(cmd) => fleet_client::agents(cmd),
        Command::Server(args) => server::serve(args),
        Command::Workspaces(cmd) => server_client::workspaces(cmd),
        Command::Tokens(cmd) => server_client::tokens(cmd),
        Command::Bench(BenchCommand::SelfTest(args)) => bench::self_test(args),
        Command::Agent(AgentCommand::Serve(args)) => agent::serve(args),
        Command::Agent(AgentCommand::Health(args)) => remote::health(args),
        Command::Agent(AgentCommand::Cloud(args)) => cloud::run(args),
        Command::Benches(cmd) => fleet_client::benches(cmd),
        Command::Schema { kind } => {
            let schema = match kind {
                SchemaKind::Bench => hilt_model::schema::bench_schema(),
                SchemaKind::Suite => hilt_model::schema::suite_schema(),
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(0)
        }
        Command::Completions { shell } => {
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "hilt", &mut out);
            out.flush()?;
            Ok(0)
        }
    }
}
