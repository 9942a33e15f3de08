# SPDX-License-Identifier: MIT
# echo.gp: bench/run.sh's bar chart. Needs -e "out='..'; dat='..'; idat='..'; n=N; idle=N; when='..'"
#   dat:  header "scenario server1 server2 ..." then one row per cluster, ratios to epoll
#   idat: "server KiB-per-idle-connection" rows
set terminal pngcairo size 1500,600 font "sans,11"
set output out
set datafile missing "?"
set key autotitle columnheader
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics

stats dat using 2 nooutput
rows = STATS_records
ymax = 1.0
do for [i=2:n+1] {
    stats dat using i nooutput
    if (STATS_max > ymax) { ymax = STATS_max }
}

set multiplot title "weft echo benchmark, ".when.": servers pinned to CPU 0, load generator to CPU 1"
set origin 0, 0
set size 0.66, 0.95
set title "Ratio to the plain epoll server (higher is better)\nreq/s: throughput ratio;  CPU/req: epoll's server CPU per request / this server's"
set ylabel "ratio to epoll"
set yrange [0:ymax * 1.15]
set key below horizontal
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 1.5 lc rgb "black" back
# The issue's targets for weft, over their clusters: 0.9x with 1 KiB, 0.8x with 64 KiB.
set arrow 2 from -0.45, first 0.9 to 0.45, first 0.9 nohead dt 3 lw 2 lc rgb "red" back
set arrow 3 from 0.55, first 0.8 to 1.45, first 0.8 nohead dt 3 lw 2 lc rgb "red" back
set xrange [-0.6:rows - 0.4]
bx(c, i) = c + (i - 2 - (n - 1) / 2.0) / (n + 1.0)
plot for [i=2:n+1] dat using i:xtic(1), \
     for [i=2:n+1] dat using (bx($0, i)):(column(i)):(sprintf("%.2f", column(i))) \
         with labels offset 0, 0.6 font "sans,8" notitle, \
     NaN with lines dt 3 lw 2 lc rgb "red" title "weft target"
unset arrow 1
unset arrow 2
unset arrow 3
unset xrange
set xrange [*:*]

set origin 0.66, 0
set size 0.34, 0.95
set xtics font "sans,10"
set title sprintf("RSS per idle connection\n(VmRSS growth over %d idle connections)", idle)
set ylabel "KiB per connection"
unset key
set key noautotitle
stats idat using 2 nooutput
set yrange [0:(STATS_max > 1.6 ? STATS_max * 1.15 : 1.8)]
set arrow 5 from graph 0, first 1.5 to graph 1, first 1.5 nohead dt 3 lw 2 lc rgb "red" back
set label 6 "weft target 1.5" at graph 0.03, first 1.55 tc rgb "red" font "sans,9"
plot idat using 2:xtic(1) lc rgb "#4477aa", \
     "" using 0:2:(sprintf("%.2f", $2)) with labels offset 0, 0.6 font "sans,9"
unset multiplot
