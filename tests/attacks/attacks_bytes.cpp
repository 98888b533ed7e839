// The attacks with malformed bytes: lines over max_line, a request of ten
// megabytes, random bytes, broken netstrings. Each connection must be closed
// by the server once it is broken, and the server must stop reading it.
#include <fmt/format.h>

#include <random>
#include <thread>

#include "attack_support.hpp"
#include "attacks.hpp"
#include "raw_socket.hpp"

namespace unit::attacks {

namespace {

struct Tally {
    std::atomic<std::uint64_t> connections{0}, closed{0};
};

// Sends `bytes` on a new connection and expects the server to close it.
void expect_closed(const Target& target, const std::string& path, std::string_view bytes, Tally& tally,
                   Problems& problems, const char* what) {
    RawSocket socket = RawSocket::connect(path);
    if (!socket.ok()) {
        problems.add("connect failed");
        std::this_thread::sleep_for(10ms);
        return;
    }
    ++tally.connections;
    socket.send_all(bytes);  // fails once the server has closed: fine
    if (socket.wait_closed(close_allowance(target))) ++tally.closed;
    else problems.add(fmt::format("{}: connection not closed by the server", what));
}

std::uint64_t protocol_errors(const Target& target) {
    return counter(read_counters(target.control), "protocol_errors");
}

// The server counts each connection it closed on a broken request.
void expect_counted(const Target& target, std::uint64_t before, const Tally& tally, AttackOutcome& outcome) {
    std::uint64_t counted = protocol_errors(target) - before;
    if (counted < tally.closed)
        outcome.problems.push_back(fmt::format("{} connections closed but only {} counted as protocol errors",
                                               tally.closed.load(), counted));
}

}  // namespace

AttackOutcome oversized_line(const Target& target) {
    // A recipient line longer than max_line, and never ended.
    const std::string bytes = "request=smtpd_access_policy\nprotocol_state=RCPT\nrecipient=" +
                              std::string(target.limits.max_line + 4096, 'a');
    const std::uint64_t before = protocol_errors(target);
    Tally tally;
    Problems problems;
    constexpr unsigned threads = 4;
    run_threads(threads, 3s, [&](unsigned, Clock::time_point deadline) {
        for (Pacer pacer(1ms); Clock::now() < deadline; pacer.wait())
            expect_closed(target, target.policy, bytes, tally, problems, "long line");
    });
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} lines of {} bytes, {} closed by the server", tally.connections.load(),
                                      bytes.size(), tally.closed.load()),
                          threads, target.limits.max_line + server_feed_slice};
    expect_counted(target, before, tally, outcome);
    return outcome;
}

AttackOutcome ten_megabytes(const Target& target) {
    constexpr std::size_t size = 10 * 1024 * 1024;
    // Policy: well-formed attribute lines that never end the request, so
    // that max_request, not max_line, stops it. Socketmap: one netstring.
    std::string policy;
    policy.reserve(size + 128);
    while (policy.size() < size) policy += "x_attribute=" + std::string(88, 'y') + "\n";
    std::string socketmap = fmt::format("{}:", size) + std::string(size, 'z') + ",";

    const std::uint64_t before = protocol_errors(target);
    Tally tally;
    Problems problems;
    std::atomic<std::size_t> most_taken{0};
    constexpr unsigned threads = 2;
    run_threads(threads, 3s, [&](unsigned index, Clock::time_point deadline) {
        const bool is_policy = index % 2 == 0;
        for (Pacer pacer(1ms); Clock::now() < deadline; pacer.wait()) {
            RawSocket socket = RawSocket::connect(is_policy ? target.policy : target.socketmap);
            if (!socket.ok()) {
                problems.add("connect failed");
                continue;
            }
            ++tally.connections;
            std::size_t taken = 0;
            if (socket.send_all(is_policy ? policy : socketmap, taken)) problems.add("the server took all 10 MB");
            std::size_t seen = most_taken.load();
            while (taken > seen && !most_taken.compare_exchange_weak(seen, taken)) {
            }
            if (socket.wait_closed(close_allowance(target))) ++tally.closed;
            else problems.add("connection not closed by the server");
        }
    });
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} requests of 10 MB, {} closed, at most {} KiB taken", tally.connections.load(),
                                      tally.closed.load(), most_taken.load() / 1024),
                          threads, target.limits.max_request + server_feed_slice};
    // What the kernel took is what the server read (max_request and one
    // read) plus the socket buffers (about 200 KiB each way): never 10 MB.
    if (most_taken.load() > target.limits.max_request + 1024 * 1024)
        outcome.problems.push_back(fmt::format("the server read {} bytes of one request", most_taken.load()));
    expect_counted(target, before, tally, outcome);
    return outcome;
}

AttackOutcome binary_garbage(const Target& target) {
    Tally tally;
    Problems problems;
    constexpr unsigned threads = 4;  // two per socket
    run_threads(threads, 3s, [&](unsigned index, Clock::time_point deadline) {
        std::mt19937_64 random(index + 1);  // the same bytes every run
        std::uniform_int_distribution<int> byte(0, 255);
        std::string bytes(4096, '\0');
        const bool is_policy = index % 2 == 0;
        for (Pacer pacer(1ms); Clock::now() < deadline; pacer.wait()) {
            for (char& c : bytes) c = static_cast<char>(byte(random));
            expect_closed(target, is_policy ? target.policy : target.socketmap, bytes, tally, problems,
                          is_policy ? "policy" : "socketmap");
        }
    });
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} connections of 4 KiB of random bytes, {} closed", tally.connections.load(),
                                      tally.closed.load()),
                          threads, target.limits.max_line + server_feed_slice};
    // Random bytes without a line end (1% of them) are a request still
    // arriving, closed after request_timeout, not a protocol error.
    if (tally.closed < tally.connections) outcome.problems.push_back("some connections were not closed");
    return outcome;
}

AttackOutcome bad_netstrings(const Target& target) {
    struct Variant {
        const char* name;
        std::string bytes;
        bool answered_first;  // a whole request precedes the bad one
    };
    const std::vector<Variant> variants = {
        {"letters for a length", "abc:defgh,", false},
        {"empty length", ":,", false},
        {"leading zero", "01:a,", false},
        {"negative length", "-1:a,", false},
        {"missing comma", "3:abcX", false},
        {"length of 9 digits", "999999999:", false},
        {"length past 64 bits", "18446744073709551617:x,", false},
        {"length over max_request", fmt::format("{}:", target.limits.max_request + 1), false},
        {"whole request then missing comma", socketmap_request("transportmx", target.mailbox) + "5:hello!", true},
    };
    const std::uint64_t before = protocol_errors(target);
    Tally tally;
    Problems problems;
    std::atomic<std::uint64_t> answered{0};
    constexpr unsigned threads = 2;
    run_threads(threads, 3s, [&](unsigned index, Clock::time_point deadline) {
        Pacer pacer(1ms);
        for (std::size_t i = index; Clock::now() < deadline; i += threads, pacer.wait()) {
            const Variant& v = variants[i % variants.size()];
            RawSocket socket = RawSocket::connect(target.socketmap);
            if (!socket.ok()) {
                problems.add("connect failed");
                continue;
            }
            ++tally.connections;
            socket.send_all(v.bytes);
            if (socket.wait_closed(close_allowance(target))) ++tally.closed;
            else problems.add(fmt::format("{}: connection not closed", v.name));
            if (v.answered_first) {
                const std::string& got = socket.received();
                if (got.compare(got.find(':') + 1, 3, "OK ") == 0) ++answered;
                else problems.add(fmt::format("{}: the whole request was not answered", v.name));
            }
        }
    });
    AttackOutcome outcome{problems.list(),
                          fmt::format("{} bad netstrings of {} kinds, {} closed, {} whole requests answered first",
                                      tally.connections.load(), variants.size(), tally.closed.load(), answered.load()),
                          threads, 1024};
    expect_counted(target, before, tally, outcome);
    return outcome;
}

}  // namespace unit::attacks
