//! redsim-sim: the deterministic simulation testbed.
