// progress.hpp: the progress line of a long unitctl command (import, sync,
// fleet wait) on standard error.
//
// A ProgressLine draws one line that overwrites itself ("\r", the text, and
// blanks over what is left of a longer previous line; no escape sequences,
// so that any terminal shows it), and draws nothing at all when it is not
// enabled: main() enables it only when stderr is a terminal and
// --no-progress is not given, so scripts and tests see nothing. show()
// draws at most once per interval (a line per row would cost more than the
// rows); show_now() draws at once, for a change of step. clear() erases the
// line, before any other output and at the end; the destructor does too.
// Lines are one line of printable text, shorter than a terminal's width.
// Not thread-safe. The clock is injected for tests.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

namespace unit::ctl {

class ProgressLine {
public:
    using Clock = std::function<std::chrono::steady_clock::time_point()>;
    static constexpr std::chrono::milliseconds interval{250};

    ProgressLine(
        std::ostream& out, bool enabled, Clock clock = [] { return std::chrono::steady_clock::now(); });
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;
    ~ProgressLine();

    bool enabled() const noexcept { return enabled_; }
    void show(std::string_view line);
    void show_now(std::string_view line);
    void clear() noexcept;

private:
    void draw(std::string_view line);

    std::ostream& out_;
    bool enabled_;
    Clock clock_;
    std::optional<std::chrono::steady_clock::time_point> drawn_at_;
    std::size_t width_ = 0;  // of the line on screen
};

// "1,234,567": counts in progress lines.
std::string with_thousands(std::uint64_t n);

}  // namespace unit::ctl
