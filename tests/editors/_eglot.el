;; Loads eglot for tests/editors/emacs.test.ts: Emacs 29's own, or on Emacs 28 the package
;; Debian installs (elpa-eglot). Fails (an error in batch mode) when there is none.
(unless (require 'eglot nil t)
  (setq package-directory-list (list "/usr/share/emacs/site-lisp/elpa"))
  (package-initialize)
  (require 'eglot))
