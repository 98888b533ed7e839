# throughput.gp: lookups/s at 8 and 64 connections at the report's headline
# directory size: the floor, unitpolicy (policy, socketmap) and postfwd2; the
# target (0.7 of the floor's rate) drawn over each unitpolicy bar. From
# throughput.dat (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/throughput.dat'; out='docs/bench/throughput.png'" throughput.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
set ylabel "lookups/s"
set boxwidth 0.16 absolute
set yrange [0:*]
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series floor-policy" using 1:2 with boxes lc rgb floor_colour title "floor, policy", \
     '' index "series unitpolicy-policy" using 1:2 with boxes lc rgb policy_colour title "unitpolicy, policy", \
     '' index "series floor-socketmap" using 1:2 with boxes lc rgb floor_colour fs pattern 4 border -1 \
        title "floor, socketmap", \
     '' index "series unitpolicy-socketmap" using 1:2 with boxes lc rgb socketmap_colour title "unitpolicy, socketmap", \
     '' index "series postfwd2-policy" using 1:2 with boxes lc rgb postfwd_colour title "postfwd2 (Perl hash)", \
     for [s in "floor-policy unitpolicy-policy floor-socketmap unitpolicy-socketmap postfwd2-policy"] \
        '' index "series ".s using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour \
        title "target: 0.7 of the floor"
