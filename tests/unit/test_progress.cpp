// The progress line of unitctl (src/ctl/progress.hpp), on a string stream
// with an injected terminal and clock.
#include <doctest/doctest.h>

#include <chrono>
#include <sstream>

#include "ctl/progress.hpp"

using namespace unit::ctl;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
    std::chrono::steady_clock::time_point now{};
    ProgressLine::Clock clock() {
        return [this] { return now; };
    }
};

}  // namespace

TEST_CASE("a progress line overwrites itself at most every interval, and is erased") {
    std::ostringstream out;
    FakeClock time;
    {
        ProgressLine progress(out, true, time.clock());
        progress.show("import: 4,096 rows read");
        CHECK(out.str() == "\rimport: 4,096 rows read");
        time.now += 100ms;
        progress.show("import: 8,192 rows read");  // too soon: not drawn
        CHECK(out.str() == "\rimport: 4,096 rows read");
        time.now += ProgressLine::interval;
        out.str("");
        progress.show("import: 12,288 rows read");
        CHECK(out.str() == "\rimport: 12,288 rows read");
        out.str("");
        progress.show_now("import: done");  // a change of step: at once, blanks over the rest
        CHECK(out.str() == "\rimport: done            ");
        out.str("");
        progress.clear();
        CHECK(out.str() == "\r            \r");
        out.str("");
        progress.clear();  // nothing drawn: nothing to erase
        CHECK(out.str() == "");
        progress.show("sync: 1 rows read");  // after clear(), the next line is drawn at once
        out.str("");
    }
    CHECK(out.str() == "\r                 \r");  // the destructor erases what is left
}

TEST_CASE("a progress line draws nothing when it is not enabled (not a terminal, --no-progress)") {
    std::ostringstream out;
    FakeClock time;
    {
        ProgressLine progress(out, false, time.clock());
        progress.show("import: 4,096 rows read");
        time.now += 1s;
        progress.show_now("import: committing");
        progress.clear();
    }
    CHECK(out.str().empty());
}

TEST_CASE("counts are written with thousands separators") {
    CHECK(with_thousands(0) == "0");
    CHECK(with_thousands(999) == "999");
    CHECK(with_thousands(1000) == "1,000");
    CHECK(with_thousands(250000) == "250,000");
    CHECK(with_thousands(1234567) == "1,234,567");
}
