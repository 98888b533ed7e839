# latency.gp: p99 latency at 8 and 64 connections for the floor,
# unitpolicy (policy, socketmap) and postfwd2, from connections.dat
# (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/connections.dat'; out='docs/bench/latency.png'" latency.gp
set terminal pngcairo size 900,520 noenhanced font "sans,10"
set output out
set title "p99 latency against client connections (log scale; target: under 1 ms at 8 connections)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set grid ytics
set ylabel "p99 latency (ms)"
set key below horizontal
set datafile missing "?"
plot data using ($3/1000):xtic(sprintf("%d connections", $1)) title "floor (no lookup)", \
     '' using ($5/1000) title "unitpolicy policy", \
     '' using ($7/1000) title "unitpolicy socketmap", \
     '' using ($9/1000) title "postfwd2 (Perl hash)"
