import json,sys,subprocess
a,b=sys.argv[1],sys.argv[2]
NEW={"provenance","classifier_fingerprint","seed","split_seed","data","warnings","normalization"}
ja=json.load(open(a+"/eval/results.json")); jb=json.load(open(b+"/eval/results.json"))
for k in NEW: jb.pop(k,None)
print("results.json equal (minus provenance fields):", ja==jb)
for f in ["results.csv","scores.safetensors"]:
    print(f, open(a+"/eval/"+f,'rb').read()==open(b+"/eval/"+f,'rb').read())
ma=open(a+"/eval/results.md").read(); mb=open(b+"/eval/results.md").read()
print("results.md equal:", ma==mb)
import os
for d in sorted(os.listdir(a+"/eval/detectors")):
    if d.endswith(".safetensors") or d.endswith(".json"):
        if d=="protocol.json": continue
        pa=a+"/eval/detectors/"+d; pb=b+"/eval/detectors/"+d
        if open(pa,'rb').read()!=open(pb,'rb').read(): print("detector differs:",d)
# score: old columns index,m...; new index,source,predicted,m...,m:decision
ra=[l.split(",") for l in open(a+"/score.csv").read().splitlines()]
rb=[l.split(",") for l in open(b+"/score.csv").read().splitlines()]
ha,hb=ra[0],rb[0]
ok=True
for j,m in enumerate(ha[1:],1):
    jb_=hb.index(m)
    for ia,ib in zip(ra[1:],rb[1:]):
        if ia[j]!=ib[jb_]: ok=False
print("score columns equal:",ok, len(ra),len(rb))
for f in ["decoder.safetensors","log.json"]:
    try: print("hm",f, open(a+"/hm/"+f,'rb').read()==open(b+"/hm/"+f,'rb').read())
    except Exception as e: print(f,e)
