/* Makes the offline widget manager (@jupyter-widgets/html-manager 1.x, _static/widgets/) work
 * in this book without errors. Loaded before require.js and embed-amd.js (nb_ipywidgets_js in
 * _config.yml).
 *
 * 1. Its fonts. embed-amd.js defines its modules by name ("@jupyter-widgets/base", ...), and
 *    webpack loads the Font Awesome files its style sheet needs from the folder of the module's
 *    URL, which require.js derives from the name: "<page folder>/@jupyter-widgets/", where
 *    nothing is (6 missing fonts on chapter 8). The `require` object below is require.js's
 *    start-up configuration: it maps each of those names into _static/widgets/, beside
 *    embed-amd.js, where `make book-assets` copies the fonts.
 *
 * 2. MathJax. The manager typesets widget labels with
 * MathJax 2's API, `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`, whenever
 * `window.MathJax` exists. The book loads MathJax 3, which has no `Hub`: every label threw
 * "Cannot read properties of undefined (reading 'Queue')". This gives MathJax 3 that one call,
 * typesetting the element once MathJax has started. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (script && typeof window.require === "undefined") {
    var widgets = new URL("widgets/", script.src).href;  // this file is in _static/
    var modules = {
      "@jupyter-widgets/base": "base", "@jupyter-widgets/base7": "base7",
      "@jupyter-widgets/controls": "controls", "@jupyter-widgets/controls7": "controls7",
      "@jupyter-widgets/html-manager": "html-manager",
      "@jupyter-widgets/html-manager/dist/libembed-amd": "libembed-amd"
    };
    var paths = {};
    Object.keys(modules).forEach(function (name) { paths[name] = widgets + modules[name]; });
    window.require = { paths: paths };
  }

  var hub = {
    Queue: function () {
      for (var i = 0; i < arguments.length; i++) {
        var job = arguments[i];
        if (Array.isArray(job) && job[0] === "Typeset" && job[2]) { typeset(job[2]); }
        else if (typeof job === "function") { job(); }
      }
    }
  };
  function typeset(element) {
    var mj = window.MathJax;
    if (!mj || !mj.typesetPromise) { return; }
    var ready = (mj.startup && mj.startup.promise) || Promise.resolve();
    ready.then(function () { return mj.typesetPromise([element]); })
      .catch(function (err) { console.warn("MathJax could not typeset a widget label:", err); });
  }
  // MathJax 3 replaces the window.MathJax configuration object when its (deferred) script
  // runs, so attach again once the deferred scripts have run and once the page has loaded.
  function attach() {
    if (window.MathJax && !window.MathJax.Hub) { window.MathJax.Hub = hub; }
  }
  attach();
  document.addEventListener("DOMContentLoaded", attach);
  window.addEventListener("load", attach);
})();
