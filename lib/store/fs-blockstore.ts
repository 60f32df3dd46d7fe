// blockstore-fs with writes that are atomic across processes. blockstore-fs writes a block
// through a temp file with a FIXED name (`.<block>.tmp`), so two processes storing the same
// block at once truncate each other's temp file and a reader can see a half-written block.
// Here every write goes to a temp file unique to this process and call, then is renamed
// over the final name (rename is atomic): a reader sees no file or a whole one. Blocks
// are content-addressed, so whichever identical write lands last is as good as the first,
// and rewriting an existing block repairs one that was damaged on disk.
import { randomUUID } from "node:crypto";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FsBlockstore } from "blockstore-fs";
import { NextToLast } from "blockstore-fs/sharding";
import type { CID } from "multiformats/cid";

export const BLOCK_EXTENSION = ".data";
export const TEMP_EXTENSION = ".tmp";

type BlockInput = Parameters<FsBlockstore["put"]>[1];
type PutOptions = Parameters<FsBlockstore["put"]>[2];

export class AtomicFsBlockstore extends FsBlockstore {
  private readonly sharding: NextToLast;

  constructor(location: string) {
    const sharding = new NextToLast({ extension: BLOCK_EXTENSION });
    super(location, { shardingStrategy: sharding });
    this.sharding = sharding;
  }

  /** The file that holds the block with this CID's multihash. */
  pathOf(cid: CID): string {
    const { dir, file } = this.sharding.encode(cid);
    return join(this.path, dir, file);
  }

  override async put(key: CID, val: BlockInput, options?: PutOptions): Promise<CID> {
    options?.signal?.throwIfAborted();
    const file = this.pathOf(key);
    const temp = `${file}.${process.pid}-${randomUUID()}${TEMP_EXTENSION}`;
    await mkdir(join(file, ".."), { recursive: true });
    try {
      await writeFile(temp, val, { signal: options?.signal });
      await rename(temp, file);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return key;
  }
}
