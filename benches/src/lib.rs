//! Benchmark binaries live in `src/bin/`; each prints a table comparing oerkit with a peer
//! (sacrebleu, llama.cpp, ...) measured on the same machine in the same run.
