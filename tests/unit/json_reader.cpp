#include "json_reader.hpp"

namespace unit::test {

namespace {

class Reader {
public:
    explicit Reader(std::string_view text) : text_(text) {}

    JsonValue document() {
        auto value = this->value();
        blanks();
        if (at_ != text_.size()) fail("text after the value");
        return value;
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw std::runtime_error("json: offset " + std::to_string(at_) + ": " + why);
    }
    void blanks() {
        while (at_ < text_.size() && std::string_view(" \t\n\r").find(text_[at_]) != std::string_view::npos) ++at_;
    }
    char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
    void expect(std::string_view word) {
        if (text_.substr(at_, word.size()) != word) fail("expected " + std::string(word));
        at_ += word.size();
    }

    JsonValue value() {
        blanks();
        JsonValue v;
        switch (peek()) {
        case 'n': expect("null"); break;
        case 't': expect("true"), v.kind = JsonValue::Kind::Bool, v.boolean = true; break;
        case 'f': expect("false"), v.kind = JsonValue::Kind::Bool; break;
        case '"': v.kind = JsonValue::Kind::String, v.string = string(); break;
        case '[': v.kind = JsonValue::Kind::Array, array(v); break;
        case '{': v.kind = JsonValue::Kind::Object, object(v); break;
        default: v.kind = JsonValue::Kind::Number, v.number = number();
        }
        return v;
    }

    std::int64_t number() {
        const auto start = at_;
        if (peek() == '-') ++at_;
        if (peek() < '0' || peek() > '9') fail("expected a value");
        if (peek() == '0' && at_ + 1 < text_.size() && text_[at_ + 1] >= '0' && text_[at_ + 1] <= '9')
            fail("leading zero");
        while (peek() >= '0' && peek() <= '9') ++at_;
        if (peek() == '.' || peek() == 'e' || peek() == 'E') fail("not an integer");
        return std::stoll(std::string(text_.substr(start, at_ - start)));
    }

    void array(JsonValue& v) {
        ++at_;
        blanks();
        if (peek() == ']') return void(++at_);
        for (;;) {
            v.array.push_back(value());
            blanks();
            if (peek() == ']') return void(++at_);
            if (peek() != ',') fail("expected , or ]");
            ++at_;
        }
    }

    void object(JsonValue& v) {
        ++at_;
        blanks();
        if (peek() == '}') return void(++at_);
        for (;;) {
            blanks();
            if (peek() != '"') fail("expected a name");
            auto name = string();
            blanks();
            if (peek() != ':') fail("expected :");
            ++at_;
            v.object.emplace_back(std::move(name), value());
            blanks();
            if (peek() == '}') return void(++at_);
            if (peek() != ',') fail("expected , or }");
            ++at_;
        }
    }

    unsigned hex4() {
        if (at_ + 4 > text_.size()) fail("short \\u escape");
        unsigned code = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[at_++];
            code <<= 4;
            if (c >= '0' && c <= '9') code |= static_cast<unsigned>(c - '0');
            else if (c >= 'a' && c <= 'f') code |= static_cast<unsigned>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F') code |= static_cast<unsigned>(c - 'A' + 10);
            else fail("bad \\u escape");
        }
        return code;
    }

    static void append_utf8(std::string& out, unsigned code) {
        if (code < 0x80) {
            out += static_cast<char>(code);
        } else if (code < 0x800) {
            out += static_cast<char>(0xc0 | (code >> 6));
            out += static_cast<char>(0x80 | (code & 0x3f));
        } else if (code < 0x10000) {
            out += static_cast<char>(0xe0 | (code >> 12));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
        } else {
            out += static_cast<char>(0xf0 | (code >> 18));
            out += static_cast<char>(0x80 | ((code >> 12) & 0x3f));
            out += static_cast<char>(0x80 | ((code >> 6) & 0x3f));
            out += static_cast<char>(0x80 | (code & 0x3f));
        }
    }

    // One UTF-8 sequence copied, checked as strictly as a decoder would.
    void utf8(std::string& out) {
        const auto lead = static_cast<unsigned char>(text_[at_]);
        std::size_t length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 0;
        if (length == 0 || lead > 0xf4 || at_ + length > text_.size()) fail("bad UTF-8");
        unsigned code = lead & (0x7f >> length);
        for (std::size_t k = 1; k < length; ++k) {
            const auto c = static_cast<unsigned char>(text_[at_ + k]);
            if ((c & 0xc0) != 0x80) fail("bad UTF-8");
            code = (code << 6) | (c & 0x3f);
        }
        const unsigned least[] = {0, 0, 0x80, 0x800, 0x10000};
        if (code < least[length] || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) fail("bad UTF-8");
        out.append(text_.substr(at_, length));
        at_ += length;
    }

    std::string string() {
        ++at_;
        std::string out;
        for (;;) {
            if (at_ >= text_.size()) fail("unterminated string");
            const auto c = static_cast<unsigned char>(text_[at_]);
            if (c == '"') return ++at_, out;
            if (c < 0x20) fail("raw control character in a string");
            if (c >= 0x80) {
                utf8(out);
                continue;
            }
            ++at_;
            if (c != '\\') {
                out += static_cast<char>(c);
                continue;
            }
            const char e = at_ < text_.size() ? text_[at_++] : '\0';
            switch (e) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                unsigned code = hex4();
                if (code >= 0xdc00 && code <= 0xdfff) fail("lone low surrogate");
                if (code >= 0xd800 && code <= 0xdbff) {
                    expect("\\u");
                    const unsigned low = hex4();
                    if (low < 0xdc00 || low > 0xdfff) fail("lone high surrogate");
                    code = 0x10000 + ((code - 0xd800) << 10) + (low - 0xdc00);
                }
                append_utf8(out, code);
                break;
            }
            default: fail("bad escape");
            }
        }
    }

    std::string_view text_;
    std::size_t at_ = 0;
};

}  // namespace

const JsonValue& JsonValue::operator[](std::string_view name) const {
    if (kind != Kind::Object) throw std::runtime_error("json: not an object, no member " + std::string(name));
    for (const auto& [n, v] : object)
        if (n == name) return v;
    throw std::runtime_error("json: no member " + std::string(name));
}

std::vector<std::string> JsonValue::names() const {
    std::vector<std::string> out;
    for (const auto& [n, v] : object) out.push_back(n);
    return out;
}

JsonValue parse_json(std::string_view text) { return Reader(text).document(); }

}  // namespace unit::test
