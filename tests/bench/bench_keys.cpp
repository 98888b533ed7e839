// bench_keys.cpp: see bench_keys.hpp.
#include "bench_keys.hpp"

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <stdexcept>

namespace unit::bench {

load::Dataset read_keys(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    load::Dataset data;
    std::string kind, address;
    while (in >> kind >> address) {
        if (kind == "existing") data.existing.push_back(address);
        else if (kind == "alias") data.aliases.push_back(address);
        else if (kind == "unknown") data.unknown.push_back(address);
        else throw std::runtime_error(path + ": unknown kind " + kind);
    }
    if (data.existing.empty() || data.unknown.empty()) throw std::runtime_error(path + ": no addresses");
    return data;
}

void write_keys(const load::Dataset& data, const std::string& path) {
    const std::string partial = path + ".partial";
    {
        std::ofstream out(partial, std::ios::trunc);
        for (const auto& a : data.existing) out << "existing " << a << '\n';
        for (const auto& a : data.aliases) out << "alias " << a << '\n';
        for (const auto& a : data.unknown) out << "unknown " << a << '\n';
        if (!out.flush()) throw std::runtime_error("cannot write " + partial);
    }
    // Written last and renamed into place: a present keys file means a complete directory.
    if (std::rename(partial.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + partial);
}

namespace {
bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

PreparedDirectory prepare_directory(const std::string& dir, std::size_t mailboxes) {
    PreparedDirectory prepared;
    prepared.replica = dir + "/units.db";
    const std::string keys = dir + "/keys", primary = dir + "/primary.db";
    if (exists(prepared.replica) && exists(keys)) {
        prepared.data = read_keys(keys);
        return prepared;
    }
    for (const auto& leftover : {primary, primary + "-wal", primary + "-shm", prepared.replica})
        std::remove(leftover.c_str());
    load::DatasetSpec spec;
    spec.mailboxes = mailboxes;
    spec.units = 1'000;
    spec.aliases = mailboxes / 100;
    auto t0 = std::chrono::steady_clock::now();
    prepared.data = load::make_dataset(spec, primary, prepared.replica);
    prepared.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::chmod(prepared.replica.c_str(), 0644);
    write_keys(prepared.data, keys);
    prepared.made = true;
    return prepared;
}

}  // namespace unit::bench
