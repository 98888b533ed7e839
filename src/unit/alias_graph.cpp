#include "unit/alias_graph.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <map>

#include "unit/statements.hpp"

namespace unit::detail {

namespace {

// Finds alias cycles, chains deeper than the resolver follows and
// expansions that visit more rows than the resolver's work limit, in an
// alias -> targets graph. A self-reference is not a cycle (virtual(5)).
class AliasGraph {
public:
    explicit AliasGraph(int max_alias_targets) : max_rows_(max_alias_targets) {}
    void add(const std::string& alias, const std::string& target) {
        auto& edges = edges_[alias];
        if (alias != target) edges.push_back(target);
        ++own_rows_[alias];
    }
    std::vector<std::string> problems() {
        for (const auto& [alias, targets] : edges_) visit(alias, 0);
        for (const auto& [alias, rows] : rows_)
            if (rows > max_rows_)
                problems_.push_back(
                    fmt::format("alias {}: its expansion visits {}{} alias rows, more than max_alias_targets {}", alias,
                                rows >= saturated ? "over " : "", std::min(rows, saturated), max_rows_));
        return std::move(problems_);
    }

private:
    enum class Mark { Open, Done };
    static constexpr std::int64_t saturated = 1'000'000'000;
    struct Visit {
        int height = 0;         // the chain length below the alias
        std::int64_t rows = 0;  // alias rows its expansion reads, as the resolver reads them
    };
    Visit visit(const std::string& alias, int depth) {
        auto edges = edges_.find(alias);
        if (edges == edges_.end()) return {};
        if (auto m = marks_.find(alias); m != marks_.end()) {
            if (m->second == Mark::Open) report_cycle(alias);
            return m->second == Mark::Done ? Visit{heights_[alias], rows_[alias]} : Visit{};
        }
        marks_[alias] = Mark::Open;
        stack_.push_back(alias);
        Visit here{0, own_rows_[alias]};
        for (const auto& t : edges->second) {
            Visit below = visit(t, depth + 1);
            here.height = std::max(here.height, 1 + below.height);
            here.rows = std::min(saturated, here.rows + below.rows);
        }
        stack_.pop_back();
        marks_[alias] = Mark::Done;
        heights_[alias] = here.height;
        rows_[alias] = here.rows;
        if (here.height > max_alias_depth && depth == 0)
            problems_.push_back(fmt::format("alias {}: chain of {} aliases, deeper than {}", alias, here.height,
                                            max_alias_depth));
        return here;
    }
    void report_cycle(const std::string& alias) {
        auto start = std::find(stack_.begin(), stack_.end(), alias);
        std::string chain;
        for (auto it = start; it != stack_.end(); ++it) chain += *it + " -> ";
        problems_.push_back(fmt::format("alias cycle: {}{}", chain, alias));
    }

    std::int64_t max_rows_;
    std::map<std::string, std::vector<std::string>> edges_;
    std::map<std::string, std::int64_t> own_rows_;
    std::map<std::string, Mark> marks_;
    std::map<std::string, int> heights_;
    std::map<std::string, std::int64_t> rows_;
    std::vector<std::string> stack_;
    std::vector<std::string> problems_;
};

}  // namespace

Result<std::vector<std::string>> alias_problems(sqlite3* db, int max_alias_targets) {
    AliasGraph graph(max_alias_targets);
    auto r = for_each_row(db, sql::aliases::pairs, [&](Query& q) { graph.add(q.text(0), q.text(1)); });
    if (!r) return r.error();
    return graph.problems();
}

Result<void> refuse_alias_problems(sqlite3* db, int max_alias_targets) {
    auto problems = alias_problems(db, max_alias_targets);
    if (!problems) return problems.error();
    if (!problems->empty()) return make_error(Errc::Conflict, problems->front());
    return {};
}

}  // namespace unit::detail
