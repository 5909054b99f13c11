// Runs Node-RED in this process and prints how fast it allocates, as one JSON line:
//   node alloc-rate-child.js <userDir> <warm-up ms> <sampled ms>
// V8's sampling heap profiler, told to keep objects already collected, estimates every byte
// allocated in the window (sampled every 512 bytes on average).
import { Session } from 'node:inspector';
import { join } from 'node:path';

interface ProfileNode {
    selfSize: number;
    children: ProfileNode[];
}

const [userDir, warmUpMs, sampledMs] = process.argv.slice(2);
const redJs = join(__dirname, '..', '..', 'node_modules', 'node-red', 'red.js');
process.argv = [process.execPath, redJs, '-u', userDir!];
void import(redJs);

const session = new Session();
session.connect();
const post = <T>(method: string, params?: object): Promise<T> =>
    new Promise((resolve, reject) =>
        session.post(method, params, (err, result) => (err ? reject(err) : resolve(result as T))),
    );
const total = (node: ProfileNode): number =>
    node.children.reduce((sum, child) => sum + total(child), node.selfSize);

setTimeout(() => {
    void (async () => {
        await post('HeapProfiler.enable');
        await post('HeapProfiler.startSampling', {
            samplingInterval: 512,
            includeObjectsCollectedByMajorGC: true,
            includeObjectsCollectedByMinorGC: true,
        });
        const started = Date.now();
        await new Promise((r) => setTimeout(r, Number(sampledMs)));
        const { profile } = await post<{ profile: { head: ProfileNode } }>(
            'HeapProfiler.stopSampling',
        );
        const seconds = (Date.now() - started) / 1000;
        console.log(JSON.stringify({ bytesPerSecond: total(profile.head) / seconds }));
        process.exit(0);
    })();
}, Number(warmUpMs));
