// load.hpp: the load generator of the test toolkit, shared by the fault
// tests (tests/faults/), the attacks and the benchmarks (tests/bench/). It
// speaks to unitpolicy (or any server of the same protocols) the way
// Postfix does: persistent connections over Unix sockets, one request in
// flight on each.
//
// Contract:
// - Client: one blocking connection. ask() sends one request and waits for
//   its reply; it never throws: a connect/read/write failure or a timeout
//   gives Reply{.ok = false, .text = reason} and closes the connection;
//   the next ask() reconnects (as Postfix's clients do).
// - classify(): what a reply means for the sender: accepted, a permanent
//   rejection (5xx, REJECT / NOTFOUND, PERM), a temporary failure (4xx,
//   DEFER... / TEMP, or anything Postfix would count as a lookup or
//   configuration error), or no answer at all (connection problem, timeout).
// - Latencies: a log-linear histogram (1 µs resolution below 1 ms, <1%
//   error above), merged across threads after the run; percentiles in µs.
// - Driver: N threads, each with its own Client, cycling through a
//   workload from a different offset, until stop() or the duration ends.
//   The caller's observer sees every (request, reply, latency) on the
//   sending thread: it must be thread-safe (atomic counters). A thread
//   opens one connection per protocol it meets, when first needed: a
//   single-protocol workload has exactly `connections` connections, a mixed
//   one up to twice as many. After a request got no answer the thread
//   pauses 10 ms before the next one (no spinning on a dead server).
// - ProcessSample: CPU time and resident memory of a process from
//   /proc/PID/stat and /proc/PID/status (Linux). The daemons themselves
//   are started by daemon.hpp.
// Nothing here logs; errors are returned, a bad socket path included.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace unit::load {

enum class Protocol { Policy, Socketmap };

struct Request {
    Protocol protocol = Protocol::Policy;
    std::string map;      // socketmap only: "recipient", "transportmx", ...
    std::string key;      // the recipient address (policy) or the map key
    bool exists = false;  // the workload's truth: the address has a mailbox (or, for
                          // policy and the recipient map, is an alias)
};

struct Reply {
    bool ok = false;   // false: no reply (text says why)
    std::string text;  // policy: the action value ("DUNNO", "550 5.1.1 ...");
                       // socketmap: the netstring payload ("OK ...", "NOTFOUND ", "TEMP ...")
};

enum class Verdict { Accept, Reject, Tempfail, NoAnswer };
Verdict classify(Protocol protocol, const Reply& reply);
const char* verdict_name(Verdict verdict);

class Client {
public:
    // path: a Unix socket. timeout bounds each ask() (connect included).
    explicit Client(std::string path, std::chrono::milliseconds timeout = std::chrono::seconds(5));
    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    Reply ask(const Request& request);
    bool connected() const noexcept { return fd_ >= 0; }
    void close() noexcept;

private:
    bool ensure_connected(std::string& why);
    std::string path_;
    std::chrono::milliseconds timeout_;
    int fd_ = -1;
    std::string buffer_;  // bytes read past the last reply
};

class Histogram {
public:
    void add(std::chrono::nanoseconds latency) noexcept;
    void merge(const Histogram& other) noexcept;
    std::uint64_t count() const noexcept;
    double percentile_us(double p) const noexcept;  // p in [0, 100]
    double mean_us() const noexcept;

private:
    std::vector<std::uint64_t> buckets_ = std::vector<std::uint64_t>(4096);
    std::uint64_t count_ = 0;
    double sum_ns_ = 0;
};

struct DriverOptions {
    // Socket per protocol: a request goes to the path of its protocol.
    std::string policy_socket;
    std::string socketmap_socket;
    unsigned connections = 8;
    std::chrono::milliseconds duration{1000};  // zero: until stop()
    std::chrono::milliseconds timeout{5000};
};

using Observer = std::function<void(const Request&, const Reply&, std::chrono::nanoseconds)>;

struct DriverResult {
    std::uint64_t requests = 0;
    std::chrono::nanoseconds elapsed{};
    Histogram latency;
    double rate() const noexcept;  // requests per second
};

// Runs the workload on options.connections threads; blocks until done.
// observer may be empty. stop (optional) ends the run early when set.
DriverResult drive(const DriverOptions& options, const std::vector<Request>& workload, const Observer& observer = {},
                   const std::atomic<bool>* stop = nullptr);

// A directory to test and measure against: a primary made by libunit's
// Primary::init, filled in one transaction straight through SQLite (the
// rows `unitctl import` of the same objects would store, ten million
// mailboxes in about a minute), then published by Primary::publish.
struct DatasetSpec {
    std::size_t mailboxes = 10'000;
    std::size_t units = 1'000;
    std::size_t aliases = 100;  // each with two targets on different units
    std::vector<std::string> domains{"example.com", "example.net", "example.org"};
};

struct Dataset {
    std::vector<std::string> existing;  // a sample of mailbox addresses (at most 100,000)
    std::vector<std::string> aliases;   // alias addresses
    std::vector<std::string> unknown;   // addresses in served domains with no mailbox
};

// Units are unit0001..; mailbox i is user<i>@<domain i mod domains> on unit
// i mod units; alias j points at mailboxes 2j and 2j+1; unknown addresses
// are nobody<i>@<domain>. Domains must be given normalised (lowercase).
// The primary must not exist yet. Throws std::runtime_error with a
// one-line reason on failure.
Dataset make_dataset(const DatasetSpec& spec, const std::string& primary_path, const std::string& replica_path);

// A workload mixing policy and socketmap requests over the dataset: half
// policy, a quarter each `recipient` and `transportmx`; `unknown_share` of
// the requests are for unknown addresses; 5% of the others (policy and
// recipient only) are for aliases. Deterministic: same input, same requests.
std::vector<Request> mixed_workload(const Dataset& data, double unknown_share, std::size_t size);

struct ProcessSample {
    double cpu_seconds = 0;  // user + system
    std::uint64_t rss_bytes = 0;
    static std::optional<ProcessSample> read(int pid);
};

}  // namespace unit::load
