# size.gp: unitpolicy's lookups/s at each directory size ÷ its best size's,
# per protocol and connection count; the target (worst at least 0.9 of
# the best) drawn across. From size.dat (tests/bench/report.py). Run by
# tests/bench/run.sh:
#   gnuplot -e "data='DIR/size.dat'; out='docs/bench/size.png'" size.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
set ylabel "lookups/s ÷ the best size's"
set yrange [0:1.15]
set ytics 0.1
set xrange [STATS_min - 0.3 : STATS_max + 0.3]
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series policy-8" using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb policy_colour \
        title "policy, 8 connections", \
     '' index "series policy-64" using 1:2:3:4 with yerrorlines lw 2 dt 3 pt 5 lc rgb policy_colour \
        title "policy, 64 connections", \
     '' index "series socketmap-8" using 1:2:3:4 with yerrorlines lw 2 pt 9 lc rgb socketmap_colour \
        title "socketmap, 8 connections", \
     '' index "series socketmap-64" using 1:2:3:4 with yerrorlines lw 2 dt 3 pt 11 lc rgb socketmap_colour \
        title "socketmap, 64 connections", \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour \
        title "target: at least 0.9 of the best"
