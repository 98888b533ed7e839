// What a daemon tells of itself on /metrics: build_info and process_*.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ctime>
#include <string>

#include "common/process_metrics.hpp"
#include "milter/stats.hpp"
#include "policyd/stats.hpp"

using unit::common::MetricsText;
using unit::common::parse_proc_stat;
using unit::common::ProcessSample;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a /proc/PID/stat line gives CPU ticks, start ticks, vsize and rss, whatever the command name") {
    // Fields as in proc(5): pid (comm) state ppid ... utime(14) stime(15) ... starttime(22) vsize(23) rss(24) ...
    const std::string line =
        "4242 (unit) policy) 0) S 1 4242 4242 0 -1 4194560 500 0 0 0 "
        "170 30 0 0 20 0 3 0 123456 987654321 2048 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0";
    auto stat = parse_proc_stat(line);
    REQUIRE(stat);
    CHECK(stat->cpu_ticks == 200);
    CHECK(stat->start_ticks == 123456);
    CHECK(stat->vsize_bytes == 987654321);
    CHECK(stat->rss_pages == 2048);
    CHECK_FALSE(parse_proc_stat("4242 unit S 1 2 3"));
    CHECK_FALSE(parse_proc_stat("4242 (unit) S 1 4242 4242 0 -1 4194560 500 0 0 0 170"));
    CHECK_FALSE(parse_proc_stat("4242 (unit) S 1 4242 4242 0 -1 4194560 500 0 0 0 x 30 0 0 20 0 3 0 1 2 3"));
}

TEST_CASE("this process, read from /proc/self, as a Prometheus client library reports it") {
    const auto before = unit::common::read_process();
    int fd = open("/dev/null", O_RDONLY);
    REQUIRE(fd >= 0);
    const auto sample = unit::common::read_process();
    close(fd);
    REQUIRE(sample.start_time_seconds);
    const auto now = static_cast<double>(std::time(nullptr));
    CHECK(*sample.start_time_seconds <= now + 1);
    CHECK(*sample.start_time_seconds > now - 3600);
    REQUIRE(sample.cpu_seconds);
    CHECK(*sample.cpu_seconds >= 0);
    REQUIRE(sample.resident_bytes);
    CHECK(*sample.resident_bytes > 0);
    REQUIRE(sample.virtual_bytes);
    CHECK(*sample.virtual_bytes >= *sample.resident_bytes);
    REQUIRE(sample.open_fds);
    REQUIRE(before.open_fds);
    CHECK(*sample.open_fds == *before.open_fds + 1);
    rlimit limit{};
    REQUIRE(getrlimit(RLIMIT_NOFILE, &limit) == 0);
    REQUIRE(sample.max_fds);
    CHECK(*sample.max_fds == static_cast<double>(limit.rlim_cur));
}

TEST_CASE("process_* families are written when known and left out when not") {
    ProcessSample sample;
    sample.start_time_seconds = 1700000000.5;
    sample.cpu_seconds = 2.25;
    sample.open_fds = 7;
    MetricsText m;
    unit::common::process_metrics(m, sample);
    const auto& text = m.text();
    CHECK(has(text, "# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds 1700000000.5\n"));
    CHECK(has(text, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 2.25\n"));
    CHECK(has(text, "# TYPE process_open_fds gauge\nprocess_open_fds 7\n"));
    CHECK_FALSE(has(text, "process_resident_memory_bytes"));
    CHECK_FALSE(has(text, "process_virtual_memory_bytes"));
    CHECK_FALSE(has(text, "process_max_fds"));
}

TEST_CASE("both daemons' /metrics carry their build_info and the process_* families") {
    const std::string version = "{version=\"" UNIT_TEST_VERSION "\",sqlite=\"";
    unit::policyd::Stats policy;
    const auto p = unit::policyd::stats_prometheus(policy);
    CHECK(has(p, "# TYPE unitpolicy_build_info gauge\nunitpolicy_build_info" + version));
    CHECK(has(p, "\"} 1\n"));
    unit::milter::MilterStats milter;
    const auto m = unit::milter::stats_prometheus(milter);
    CHECK(has(m, "# TYPE unitmilter_build_info gauge\nunitmilter_build_info" + version));
    for (const char* family :
         {"process_start_time_seconds ", "process_cpu_seconds_total ", "process_resident_memory_bytes ",
          "process_virtual_memory_bytes ", "process_open_fds ", "process_max_fds "}) {
        CHECK(has(p, std::string("\n") + family));
        CHECK(has(m, std::string("\n") + family));
    }
}
