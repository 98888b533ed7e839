# throughput.gp: lookups/s at 8 and 64 connections for the floor,
# unitpolicy (policy, socketmap) and postfwd2, from connections.dat
# (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/connections.dat'; out='docs/bench/throughput.png'" throughput.gp
set terminal pngcairo size 900,520 noenhanced font "sans,10"
set output out
set title "Lookups per second against client connections (log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [10:*]
set grid ytics
set ylabel "lookups/s"
set key below horizontal
set datafile missing "?"
plot data using 2:xtic(sprintf("%d connections", $1)) title "floor (no lookup)", \
     '' using 4 title "unitpolicy policy", \
     '' using 6 title "unitpolicy socketmap", \
     '' using 8 title "postfwd2 (Perl hash)"
