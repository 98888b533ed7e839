# startup.gp: unitpolicy's start-up, from exec to the first answer, at each
# directory size: a first start on a new file and a restart on the same
# file; the target (a restart under 100 ms at 10,000,000 mailboxes) drawn
# over that bar. From startup.dat (tests/bench/report.py). Run by
# tests/bench/run.sh:
#   gnuplot -e "data='DIR/startup.dat'; out='docs/bench/startup.png'" startup.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
set ylabel "milliseconds to the first answer"
set boxwidth 0.38 absolute
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series first" using 1:2 with boxes lc rgb floor_colour title "first start on a new file", \
     '' index "series restart" using 1:2 with boxes lc rgb policy_colour title "restart on the same file", \
     for [s in "first restart"] '' index "series ".s using ($1-0.02):2:(sprintf("%.0f ms", $2)) with labels right \
        offset 0,0.8 font "sans,9" notitle, \
     for [s in "first restart"] '' index "series ".s using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour \
        title "target: restart under 100 ms at 10M"
