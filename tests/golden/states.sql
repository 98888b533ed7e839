-- Rows of the states directory that unitctl refuses to write (its import
-- checks that every alias target resolves), as a provider's own system
-- writing the replica directly could leave them: aliases whose targets are
-- gone from the directory. Run on the published replica (golden.cpp).
INSERT INTO aliases (address, target) VALUES ('dead.unknown@states.example', 'gone@states.example');
INSERT INTO aliases (address, target) VALUES ('dead.mixed@states.example', 'gone@states.example');
INSERT INTO aliases (address, target) VALUES ('dead.mixed@states.example', 'disabled.up@states.example');
INSERT INTO aliases (address, target) VALUES ('mixed@states.example', 'gone@states.example');
-- An alias that lists itself but has no mailbox: its own address is a
-- target that is gone.
INSERT INTO aliases (address, target) VALUES ('self.gone@states.example', 'self.gone@states.example');
INSERT INTO aliases (address, target) VALUES ('self.gone@states.example', 'eve@other.example');
