// Training progress for people watching: a cli-progress bar on a terminal, or one status
// line per epoch when output goes to a file or CI log (bars there are just noise).
import cliProgress from "cli-progress";

export interface TrainProgress {
  /** 1-based epoch and batch numbers. */
  readonly epoch: number;
  readonly epochs: number;
  readonly batch: number;
  readonly batches: number;
  /** Training objective (cross-entropy, plus FedProx's proximal term when on) of the last batch or the whole epoch. */
  readonly loss: number;
  readonly phase: "batch" | "epoch";
}

export type ProgressListener = (p: TrainProgress) => void;

interface Output {
  readonly isTTY?: boolean;
  write(text: string): unknown;
}

/** A listener to pass as trainLocal's onProgress. */
export function progressReporter({ stream = process.stdout as Output, label = "train" }: { stream?: Output; label?: string } = {}): ProgressListener {
  if (!stream.isTTY) {
    return (p) => {
      if (p.phase === "epoch") stream.write(`${label}: epoch ${p.epoch}/${p.epochs} loss ${p.loss.toFixed(4)} (${p.batches} batches)\n`);
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  return (p) => {
    if (!bar) {
      bar = new cliProgress.SingleBar(
        { format: `${label} [{bar}] {percentage}% | epoch {epoch}/{epochs} | loss {loss}`, stream: stream as NodeJS.WritableStream, hideCursor: true },
        cliProgress.Presets.shades_classic,
      );
      bar.start(p.epochs * p.batches, 0, { epoch: p.epoch, epochs: p.epochs, loss: "-" });
    }
    bar.update((p.epoch - 1) * p.batches + p.batch, { epoch: p.epoch, epochs: p.epochs, loss: p.loss.toFixed(4) });
    if (p.phase === "epoch" && p.epoch === p.epochs) {
      bar.stop();
      bar = undefined;
    }
  };
}
