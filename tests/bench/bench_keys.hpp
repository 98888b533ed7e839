// bench_keys.hpp: the benchmark's directory on disk (tests/bench/README.md,
// "One directory size"): DIR/primary.db, DIR/units.db and DIR/keys, the
// sample of addresses the workloads are made from ("existing ADDRESS",
// "alias ADDRESS", "unknown ADDRESS", one per line).
//
// Contract: prepare_directory() reuses DIR/units.db and DIR/keys when both
// are there, otherwise makes them with make_dataset() (N mailboxes, 1,000
// units, N/100 aliases), replacing any leftover primary or replica. Errors
// throw std::runtime_error with a one-line reason.
#pragma once

#include <cstddef>
#include <string>

#include "load.hpp"

namespace unit::bench {

struct PreparedDirectory {
    load::Dataset data;
    bool made = false;
    double seconds = 0;  // generation time (made only)
    std::string replica;
};

PreparedDirectory prepare_directory(const std::string& dir, std::size_t mailboxes);

load::Dataset read_keys(const std::string& path);
void write_keys(const load::Dataset& data, const std::string& path);

}  // namespace unit::bench
