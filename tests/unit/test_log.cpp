// The log sink: printable() for values, and the guard that keeps every
// log line one line whatever its caller passes.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/log.hpp"
#include "test_support.hpp"

using namespace unit;
using common::printable;

namespace {

// What log() wrote to stderr while `write_lines` ran.
template <class F>
std::string captured_stderr(const test::TempDir& dir, F write_lines) {
    const std::string path = dir.path("stderr");
    int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    REQUIRE(file >= 0);
    int saved = dup(STDERR_FILENO);
    dup2(file, STDERR_FILENO);
    common::open_log(common::LogSink::Stderr, "test", false);
    write_lines();
    common::open_log(common::LogSink::None, "test", false);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(file);
    return test::read_file(path);
}

}  // namespace

TEST_CASE("printable escapes what could break a line, drive a terminal or forge an escape") {
    CHECK(printable("alice@example.com") == "alice@example.com");
    CHECK(printable("a\nforged: line") == "a\\x0aforged: line");
    CHECK(printable("\r\x1b[2J\x7f") == "\\x0d\\x1b[2J\\x7f");
    // A backslash is escaped too: "\x0a" in a value cannot pass for an escaped newline.
    CHECK(printable("a\\x0ab") == "a\\x5cx0ab");
    CHECK(printable(std::string_view("nul\0byte", 8)) == "nul\\x00byte");
}

TEST_CASE("printable keeps valid UTF-8 but escapes C1 controls and bytes that are not UTF-8") {
    CHECK(printable("j\xc3\xb6rg@b\xc3\xbc"
                    "cher.example") ==
          "j\xc3\xb6rg@b\xc3\xbc"
          "cher.example");
    CHECK(printable("\xe2\x82\xac \xf0\x9f\x93\xa7") == "\xe2\x82\xac \xf0\x9f\x93\xa7");
    CHECK(printable("\xc2\x9b"
                    "2J") == "\\xc2\\x9b2J");               // U+009B, the 8-bit CSI
    CHECK(printable("\xc0\xaf") == "\\xc0\\xaf");           // overlong '/'
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");  // a surrogate
    CHECK(printable("\xff\xfe") == "\\xff\\xfe");
    CHECK(printable("cut \xc3") == "cut \\xc3");  // a sequence cut short
    CHECK(printable("\xe2\x82x") == "\\xe2\\x82x");
}

TEST_CASE("printable keeps at most max bytes of the value and says it cut") {
    CHECK(printable(std::string(8192, 'a')) == std::string(320, 'a') + "...");
    CHECK(printable("queue-id", 5) == "queue...");
    CHECK(printable("exact", 5) == "exact");
    CHECK(printable("\xc3\xa9t\xc3\xa9", 2) == "\xc3\xa9...");
    CHECK(printable("\xc3\xa9t\xc3\xa9", 1) == "\\xc3...");  // never half a character
}

TEST_CASE("every log line is one line of at most max_log_line bytes, whatever the caller passes") {
    test::TempDir dir;
    std::string out = captured_stderr(dir, [] {
        common::log(common::Severity::Warning, "value {}", "a\r\nunitpolicy[1]: forged");
        common::log(common::Severity::Info, "{}", std::string(3 * common::max_log_line, 'x'));
        common::log(common::Severity::Info, "plain {}", printable("b\\c"));
    });
    const std::string pid = std::to_string(getpid());
    CHECK(out == "test[" + pid + "]: warning: value a\\x0d\\x0aunitpolicy[1]: forged\n" + "test[" + pid +
                     "]: " + std::string(common::max_log_line, 'x') + "...\n" + "test[" + pid + "]: plain b\\x5cc\n");
}

// ASan's operator new reports an impossible size itself instead of calling
// the new handler; the sanitizer build skips this one.
#if !defined(__SANITIZE_ADDRESS__)
TEST_CASE("an allocation that fails ends the process with status 1 and a fatal line") {
    test::TempDir dir;
    const std::string path = dir.path("stderr");
    pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(file, STDERR_FILENO);
        common::open_log(common::LogSink::Stderr, "test", false);
        common::end_process_on_allocation_failure();
        void* p = ::operator new (std::size_t{1} << 60);  // more than any address space
        ::operator delete(p);
        _exit(0);  // reached only when the allocation did not fail
    }
    int status = 0;
    REQUIRE(waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
    CHECK(test::read_file(path) == fmt::format("test[{}]: fatal: out of memory\n", child));
}
#endif
