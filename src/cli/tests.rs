#[test]
fn the_command_line_is_well_formed() {
    use clap::CommandFactory;
    super::Cli::command().debug_assert();
}
