// Builds the small C file that gives INCRBYFLOAT Redis's long double arithmetic.
fn main() {
    println!("cargo:rerun-if-changed=src/engine/c/ldouble.c");
    cc::Build::new().file("src/engine/c/ldouble.c").opt_level(2).compile("redsim_ldouble");
}
