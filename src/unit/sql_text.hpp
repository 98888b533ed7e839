// sql_text.hpp (internal): SQL text that the compiler knows to be a string
// literal (or a constant made of literals).
//
// Every helper of sqlite.hpp that prepares or executes SQL takes an
// SqlText, and its only constructor is consteval: a literal converts
// implicitly; a std::string, a runtime const char*, or any text built while
// the program runs does not compile. So SQL never carries data: values go
// in bound parameters (?1..?N, ATTACH ?1 AS name), and a choice between
// statements is a choice between literals, each named in statements.hpp.
// The migrations embedded at build time (schema.hpp) are literals too.
//
// An SqlText is a pointer to static, NUL-terminated text: copy it freely.
#pragma once

namespace unit::detail {

class SqlText {
public:
    // Implicit, so that a statement reads as SQL where it is named:
    // inline constexpr SqlText one = "SELECT 1".
    consteval SqlText(const char* text) : text_(text) {}  // NOLINT(google-explicit-constructor)
    const char* c_str() const noexcept { return text_; }

private:
    const char* text_;
};

}  // namespace unit::detail
