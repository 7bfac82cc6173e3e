import type { AdapterSummary, GpuCapabilities } from '../gpu/context';
import { formatBytes, formatCount } from './format';
import { useAppStore } from './store';

/** Features the kernels pick variants by; shown accented among the adapter's features. */
const kernelFeatures = new Set(['timestamp-query', 'subgroups', 'shader-f16']);

function AdapterLine({ adapter }: { adapter: AdapterSummary }) {
  const name = adapter.description || adapter.device;
  return (
    <p className="adapter-line" data-testid="adapter">
      <strong>{adapter.vendor}</strong>
      <span className="sep" aria-hidden="true">
        ·
      </span>
      {adapter.architecture}
      {name && (
        <>
          <span className="sep" aria-hidden="true">
            ·
          </span>
          {name}
        </>
      )}
      <span className={adapter.isFallbackAdapter ? 'badge badge-warn' : 'badge'}>
        {adapter.isFallbackAdapter ? 'fallback adapter' : 'not a fallback adapter'}
      </span>
    </p>
  );
}

function Limits({ caps }: { caps: GpuCapabilities }) {
  const rows: [string, string][] = [
    ['Workgroup storage', formatBytes(caps.maxWorkgroupStorageBytes)],
    ['Invocations per workgroup', formatCount(caps.maxInvocationsPerWorkgroup)],
    ['Storage binding size', formatBytes(caps.maxStorageBufferBindingSize)],
    ['Buffer size', formatBytes(caps.maxBufferSize)],
  ];
  return (
    <dl className="limits">
      {rows.map(([label, value]) => (
        <div key={label}>
          <dt>{label}</dt>
          <dd>{value}</dd>
        </div>
      ))}
    </dl>
  );
}

function Features({ features }: { features: string[] }) {
  if (features.length === 0) return <p className="muted">No optional features offered.</p>;
  const ordered = [
    ...features.filter((f) => kernelFeatures.has(f)),
    ...features.filter((f) => !kernelFeatures.has(f)),
  ];
  return (
    <ul className="chips" aria-label="Adapter features">
      {ordered.map((feature) => (
        <li key={feature} className={kernelFeatures.has(feature) ? 'chip chip-key' : 'chip'}>
          {feature}
        </li>
      ))}
    </ul>
  );
}

export function GpuPanel() {
  const gpu = useAppStore((s) => s.gpu);
  const connect = useAppStore((s) => s.connect);

  return (
    <section className="panel" aria-labelledby="gpu-title">
      <h2 id="gpu-title">GPU</h2>
      {gpu.status === 'connecting' && <p className="muted">Connecting to the GPU…</p>}
      {gpu.status === 'unavailable' && (
        <div className="alert" role="alert" data-testid="gpu-unavailable">
          <p className="alert-title">WebGPU is unavailable</p>
          <p>{gpu.message}</p>
        </div>
      )}
      {gpu.status === 'failed' && (
        <div className="alert" role="alert" data-testid="gpu-failed">
          <p>{gpu.message}</p>
          <button type="button" onClick={() => void connect()}>
            Try again
          </button>
        </div>
      )}
      {gpu.status === 'lost' && (
        <>
          <AdapterLine adapter={gpu.adapter} />
          <div className="alert" role="alert" data-testid="gpu-lost">
            <p>{gpu.message} Reconnecting starts again on a new device.</p>
            <button type="button" className="primary" onClick={() => void connect()}>
              Reconnect GPU
            </button>
          </div>
        </>
      )}
      {gpu.status === 'ready' && (
        <>
          <AdapterLine adapter={gpu.adapter} />
          <details className="gpu-details" data-testid="gpu-details">
            <summary>Limits and features</summary>
            <h3>Key limits</h3>
            <Limits caps={gpu.caps} />
            <h3>
              Features <span className="h3-note">(highlighted: used by the kernels)</span>
            </h3>
            <Features features={gpu.adapter.features} />
          </details>
        </>
      )}
    </section>
  );
}
