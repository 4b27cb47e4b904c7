fn main() {
    std::process::exit(ocitool::cli::main());
}
