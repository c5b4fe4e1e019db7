/**
 * The Emacs setup of docs/editors.md, run for real: Emacs in batch mode loads the page's
 * elisp exactly as shown, starts eglot on a program with a mistake, and writes the
 * diagnostics eglot received from the language server to a file that the test reads. `heddle`
 * on PATH is a shim that runs this checkout. eglot is Emacs 29's own, or on Emacs 28 Debian's
 * `elpa-eglot` (.ci/run installs `emacs-nox` and `elpa-eglot`); without Emacs and eglot the
 * test is skipped. It must never pass on a setup the page does not show.
 */
import assert from "node:assert/strict";
import { docSnippet, inEditorFolder, ROOT } from "./_setup.ts";

/** Whether `emacs` is on PATH and can load eglot (built in, or from Debian's elpa folder). */
async function haveEglot(): Promise<boolean> {
  try {
    const out = await new Deno.Command("emacs", {
      args: ["-Q", "--batch", "-l", `${ROOT}tests/editors/_eglot.el`],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

/** Opens the program, starts eglot, waits for its diagnostics and writes them out. */
const DRIVER = `
(load (expand-file-name "config.el"))
(let ((buffer (find-file-noselect (expand-file-name "program.he"))))
  (with-current-buffer buffer
    (apply (function eglot) (eglot--guess-contact)))
  (let ((deadline (+ (float-time) 90)))
    (while (and (not (buffer-local-value 'eglot--diagnostics buffer))
                (< (float-time) deadline))
      (accept-process-output nil 0.2)))
  (let ((mode (buffer-local-value 'major-mode buffer))
        (lines (with-current-buffer buffer
                 (mapcar (lambda (d)
                           (format "%s %s %s" (line-number-at-pos (flymake-diagnostic-beg d))
                                   (flymake-diagnostic-type d) (flymake-diagnostic-text d)))
                         eglot--diagnostics))))
    (with-temp-file (expand-file-name "seen.txt")
      (insert (format "mode %s\\n" mode))
      (dolist (line lines) (insert line "\\n")))))
(kill-emacs 0)
`;

Deno.test({
  name: "the Emacs eglot setup from docs/editors.md shows the server's diagnostics",
  ignore: !(await haveEglot()),
  fn: async () => {
    const config = docSnippet("Emacs 29 and later", "elisp");
    const files = { "config.el": config, "driver.el": DRIVER };
    const seen = await inEditorFolder(files, async (dir, path) => {
      const out = await new Deno.Command("emacs", {
        args: ["-Q", "--batch", "-l", `${ROOT}tests/editors/_eglot.el`, "-l", "driver.el"],
        cwd: dir,
        env: { PATH: path, HOME: dir },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return await Deno.readTextFile(`${dir}/seen.txt`);
    });
    assert.match(seen, /^mode heddle-mode$/m);
    assert.match(
      seen,
      /^5 eglot-error heddle \[HE\d{4}\]: module `fhub\/file` has no member `wrte`/m,
    );
    assert.match(seen, /did you mean `file\.write`/);
  },
});
