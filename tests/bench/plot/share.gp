# share.gp: unitpolicy's lookups/s ÷ the floor's at each directory size and
# connection count, policy and socketmap; the target (0.7) drawn across.
# From share.dat (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/share.dat'; out='docs/bench/share.png'" share.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
set ylabel "unitpolicy's lookups/s ÷ the floor's"
set yrange [0:1.15]
set ytics 0.1
set boxwidth 0.38 absolute
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series policy" using 1:2 with boxes lc rgb policy_colour title "policy delegation", \
     '' index "series socketmap" using 1:2 with boxes lc rgb socketmap_colour title "socketmap", \
     '' index "series policy" using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "series socketmap" using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour \
        title "target: at least 0.7 of the floor"
