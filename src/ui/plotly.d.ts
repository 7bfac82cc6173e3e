/** The parts of plotly.js (plotly.js-dist-min ships no types) that the sweep plots use. */
declare module 'plotly.js-dist-min' {
  export type PlotData = Record<string, unknown>;
  export type Layout = Record<string, unknown>;
  export type Config = Record<string, unknown>;
  export interface ImageOptions {
    format: 'png' | 'svg' | 'jpeg' | 'webp';
    width: number;
    height: number;
    scale?: number;
  }
  export interface PlotlyApi {
    react(root: HTMLElement, data: PlotData[], layout: Layout, config?: Config): Promise<unknown>;
    /** A data: URL of the image. */
    toImage(root: HTMLElement, options: ImageOptions): Promise<string>;
    purge(root: HTMLElement): void;
  }
  const Plotly: PlotlyApi;
  export default Plotly;
}
