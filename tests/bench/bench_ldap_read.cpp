// bench_ldap_read: how long the LDAP source of `unitctl sync --ldap` takes to
// read a directory.
//
//   bench_ldap_read [USERS] [PAGE_SIZE]
//
// Starts a throwaway slapd (tests/ldap/slapd.sh) in a temporary directory,
// loads make_entries.py's USERS users (default 3000, the integration
// test's directory) with ldapadd, then reads them three times with
// read_ldap() over ldapi:// (simple bind as the rootdn, accountStatus as the
// state, mailAlternateAddress aliases, pages of PAGE_SIZE, default 1000) and
// prints the load time and each read's time. A benchmark, not a test: meson
// builds it, `meson test` does not run it.
#include <fmt/format.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "ctl/ldap_source.hpp"

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

int shell(const std::string& command) { return std::system(command.c_str()); }

}  // namespace

int main(int argc, char** argv) {
    const long users = argc > 1 ? std::atol(argv[1]) : 3000;
    const int page_size = argc > 2 ? std::atoi(argv[2]) : 1000;
    char pattern[] = "/tmp/bench_ldap.XXXXXX";
    if (::mkdtemp(pattern) == nullptr) return 1;
    const std::string dir = pattern;
    const std::string script = std::string(UNIT_SOURCE_ROOT) + "/tests/ldap/slapd.sh";

    int status = 1;
    if (shell(fmt::format("bash '{}' start '{}'", script, dir)) == 0) {
        auto start = Clock::now();
        if (shell(fmt::format("bash '{}' load '{}' {}", script, dir, users)) == 0) {
            fmt::print("ldapadd of {} users: {:.2f} s\n", users, seconds_since(start));
            std::ofstream(dir + "/password") << "secret\n";
            ::chmod((dir + "/password").c_str(), 0600);
            unit::ctl::LdapSettings s;
            s.uri = slurp(dir + "/uri");
            s.bind_dn = "cn=admin,dc=example,dc=com";
            s.password_file = dir + "/password";
            s.base = "ou=people,dc=example,dc=com";
            s.state_attribute = "accountStatus";
            s.page_size = page_size;
            status = 0;
            for (int run = 1; run <= 3; ++run) {
                start = Clock::now();
                auto read = unit::ctl::read_ldap(s, {});
                const double took = seconds_since(start);
                if (!read) {
                    fmt::print(stderr, "bench_ldap_read: {}\n", read.error().message);
                    status = 1;
                    break;
                }
                fmt::print("read {} mailboxes, {} aliases, {} domains (pages of {}): {:.3f} s, {:.0f} entries/s\n",
                           read->mailboxes->size(), read->aliases->size(), read->domains->size(), page_size, took,
                           static_cast<double>(read->mailboxes->size()) / took);
            }
        }
    }
    shell(fmt::format("bash '{}' stop '{}'", script, dir));
    std::filesystem::remove_all(dir);
    return status;
}
