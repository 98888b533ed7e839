# size.gp: unitpolicy's lookups/s against the number of mailboxes in the
# directory (target: flat within 10%), from size.dat
# (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/size.dat'; out='docs/bench/size.png'" size.gp
set terminal pngcairo size 900,520 noenhanced font "sans,10"
set output out
set title "unitpolicy lookups per second against directory size"
set logscale x
set format x "%.0s%c"
set xlabel "mailboxes in the directory"
set ylabel "lookups/s"
set yrange [0:*]
set grid
set key bottom right
set datafile missing "?"
plot data using 1:2 with linespoints lw 2 pt 7 title "policy, 8 connections", \
     '' using 1:3 with linespoints lw 2 pt 5 title "policy, 64 connections", \
     '' using 1:4 with linespoints lw 2 pt 9 title "socketmap, 8 connections", \
     '' using 1:5 with linespoints lw 2 pt 11 title "socketmap, 64 connections"
