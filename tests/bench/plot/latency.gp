# latency.gp: p99 latency at 8 and 64 connections at the report's headline
# directory size: the floor, unitpolicy (policy, socketmap) and postfwd2;
# the target (under 1 ms at 8 connections) drawn over the 8-connection bars.
# A bar above the y range (a baseline's) is cut, its value written on it.
# From latency.dat (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/latency.dat'; out='docs/bench/latency.png'" latency.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
ymax = real(system(sprintf("sed -n 's/^# ymax: //p' '%s'", data)))
set yrange [0:ymax]
set ylabel "p99 latency (ms)"
set boxwidth 0.2 absolute
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series floor-policy" using 1:2 with boxes lc rgb floor_colour title "floor, policy", \
     '' index "series unitpolicy-policy" using 1:2 with boxes lc rgb policy_colour title "unitpolicy, policy", \
     '' index "series unitpolicy-socketmap" using 1:2 with boxes lc rgb socketmap_colour title "unitpolicy, socketmap", \
     '' index "series postfwd2-policy" using 1:2 with boxes lc rgb postfwd_colour title "postfwd2 (Perl hash)", \
     for [s in "floor-policy unitpolicy-policy unitpolicy-socketmap postfwd2-policy"] \
        '' index "series ".s using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour \
        title "target: under 1 ms at 8 connections", \
     '' index "clipped" using 1:2:3 with labels rotate by 90 right font "sans,9" notitle
