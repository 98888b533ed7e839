// Primary::export_csv (primary.hpp): the whole database as CSV, in one read
// transaction (import is primary_import.cpp).
#include "unit/csv.hpp"
#include "unit/primary.hpp"
#include "unit/primary_db.hpp"
#include "unit/statements.hpp"

namespace unit {

using namespace detail;  // the helpers of primary_db.hpp

namespace {

// Writes every row of `sql` through `row_fields`.
template <class Fn>
Result<void> export_rows(sqlite3* db, SqlText sql, std::ostream& out, std::uint64_t& rows, Fn&& row_fields) {
    return for_each_row(db, sql, [&](Query& q) {
        write_csv_row(out, row_fields(q));
        ++rows;
    });
}

}  // namespace

Result<void> Primary::export_csv(std::ostream& out) noexcept {
    sqlite3* db = db_->db.get();
    return guarded<void>([&]() -> Result<void> {
        // One read transaction: the export is one consistent generation.
        auto txn = Transaction::begin(db, false);
        if (!txn) return txn.error();
        write_export_header(out);
        std::uint64_t rows = 0;
        auto r = export_rows(db, sql::domains::names_ordered, out, rows, [](Query& q) {
            return std::vector<std::string>{"domain", q.text(0), "", ""};
        });
        if (r)
            r = export_rows(db, sql::units::as_csv, out, rows, [](Query& q) {
                return std::vector<std::string>{"unit", q.text(0), q.text(1), q.text(2)};
            });
        if (r)
            r = export_rows(db, sql::mailboxes::as_csv, out, rows, [](Query& q) {
                return std::vector<std::string>{"mailbox", q.text(0), q.text(1), q.text(2)};
            });
        if (r)
            r = export_rows(db, sql::aliases::pairs_ordered, out, rows, [](Query& q) {
                return std::vector<std::string>{"alias", q.text(0), q.text(1), ""};
            });
        if (!r) return r;
        write_export_end(out, rows);
        out.flush();
        if (!out) return make_error(Errc::Io, "export: write failed");
        return {};
    });
}

}  // namespace unit
