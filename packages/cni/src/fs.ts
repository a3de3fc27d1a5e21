// Small filesystem helpers shared by the agent and the installer.

import { stat } from "node:fs/promises";

/** Whether anything (file, directory, netns bind mount) is at `path`. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
