# common.gp: what every chart of tests/bench/plot shares, loaded first by
# each (not a chart). The data file (tests/bench/report.py, write_data)
# opens with "# title: ..." and holds named blocks: "series NAME" (x,
# median, lowest run, highest run), "targets" (x0 x1 y: dashed lines),
# "ticks" (x, label). Linear axes, from zero.
set terminal pngcairo size 1000,580 noenhanced font "sans,10"
set output out
set title system(sprintf("sed -n 's/^# title: //p' '%s'", data))
set datafile missing "?"
set style fill solid 0.85 border -1
set grid ytics
set key below horizontal maxrows 2
set bmargin 6
stats data index "ticks" using 1 nooutput
set xrange [STATS_min - 0.5 : STATS_max + 0.5]
set xtics scale 0
set yrange [0:*]
# the series' colours, the same in every chart
floor_colour = "#9a9a9a"
policy_colour = "#3465a4"
socketmap_colour = "#73d216"
postfwd_colour = "#f57900"
target_colour = "#cc0000"
# room above the highest bar and its spread
set offsets 0, 0, graph 0.06, 0
