// progress.cpp: the self-overwriting line of progress.hpp.
#include "ctl/progress.hpp"

#include <utility>

namespace unit::ctl {

ProgressLine::ProgressLine(std::ostream& out, bool enabled, Clock clock)
    : out_(out), enabled_(enabled), clock_(std::move(clock)) {}

ProgressLine::~ProgressLine() { clear(); }

void ProgressLine::show(std::string_view line) {
    if (!enabled_) return;
    if (drawn_at_ && clock_() - *drawn_at_ < interval) return;
    draw(line);
}

void ProgressLine::show_now(std::string_view line) {
    if (enabled_) draw(line);
}

void ProgressLine::draw(std::string_view line) {
    std::string text = "\r";
    text += line;
    // Blanks over the end of a longer line drawn before.
    if (line.size() < width_) text.append(width_ - line.size(), ' ');
    out_ << text << std::flush;
    width_ = line.size();
    drawn_at_ = clock_();
}

void ProgressLine::clear() noexcept {
    if (!enabled_ || width_ == 0) return;
    try {
        out_ << '\r' << std::string(width_, ' ') << '\r' << std::flush;
    } catch (const std::ios_base::failure&) {  // a stream that throws: the line stays, nothing else to do
    }
    width_ = 0;
    drawn_at_.reset();
}

std::string with_thousands(std::uint64_t n) {
    std::string digits = std::to_string(n);
    std::string text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
        text += digits[i];
    }
    return text;
}

}  // namespace unit::ctl
