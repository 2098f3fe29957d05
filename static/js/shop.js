// The shop's own script, loaded by every page of both sites. The pages carry no inline
// script or event handler (the Content-Security-Policy allows only the sites' own
// files), so what a page does in the browser besides htmx is here, bound by data
// attributes on document, which outlives hx-boost's page swaps.
//
// data-print: a click prints the page (the invoice's Print button).
document.addEventListener("click", function (event) {
  if (event.target instanceof Element && event.target.closest("[data-print]")) {
    window.print();
  }
});
