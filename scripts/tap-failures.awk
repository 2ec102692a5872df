# Names each failed test of a node --test TAP file, with its file and the
# backend it ran on (awk -v b=BACKEND): one line "FAILED [b]: FILE: test > subtest".
# A suite or file that failed because of its tests is not named again.
function depth() { match($0, /^ */); return int(RLENGTH / 4) }
/^ *# Subtest: / { d = depth(); s = $0; sub(/^ *# Subtest: /, "", s); name[d] = s; next }
/^ *not ok [0-9]+ - / {
	d = depth()
	if (childfail[d + 1]) { childfail[d + 1] = 0; childfail[d] = 1; want = 0; next }
	path = name[0]; for (i = 1; i <= d; i++) path = path " > " name[i]
	fails[++n] = path; childfail[d] = 1; want = n; next
}
/^ *ok [0-9]+ - / { childfail[depth() + 1] = 0; want = 0; next }
want && /^ *location: / { l = $0; sub(/^ *location: '/, "", l); sub(/:[0-9]+:[0-9]+'$/, "", l); sub(/.*\//, "", l); file[want] = l; want = 0 }
END { for (i = 1; i <= n; i++) print "FAILED [" b "]: " (file[i] ? file[i] ": " : "") fails[i] }
