# e2e.gp: end-to-end messages/s of the configurations of e2e.sh (a, b, c,
# d), each with its spread; the targets (c at least 0.95 a and 0.97 d, d at
# least 0.97 a) drawn over c's and d's bars. From e2e.dat
# (tests/bench/report.py). Run by tests/bench/run.sh:
#   gnuplot -e "data='DIR/e2e.dat'; out='docs/bench/e2e.png'" e2e.gp
load system(sprintf("dirname '%s'", ARG0)) . "/common.gp"
set ylabel "messages/s (delivered to the sink)"
set boxwidth 0.6 absolute
set offsets 0, 0.5, graph 0.1, 0
plot data index "ticks" using 1:(NaN):xtic(2) notitle, \
     '' index "series e2e" using 1:2 with boxes lc rgb policy_colour title "messages/s", \
     '' index "series e2e" using ($1-0.15):2:(sprintf("%.1f", $2)) with labels right offset 0,0.8 font "sans,9" \
        notitle, \
     '' index "series e2e" using 1:3:(0):($4-$3) with vectors heads size screen 0.005,90 lc rgb "black" lw 1.5 notitle, \
     '' index "targets" using 1:3:($2-$1):(0) with vectors nohead dt 2 lw 2 lc rgb target_colour title "targets: c ≥ 0.95 a, c ≥ 0.97 d, d ≥ 0.97 a", \
     '' index "labels" using 1:2:3 with labels right offset 0,0.6 font "sans,9" textcolor rgb target_colour notitle
