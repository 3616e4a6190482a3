// A stand-in for the storefront's Customer Privacy API as Shopify documents it
// (https://shopify.dev/docs/api/customer-privacy): window.Shopify.loadFeatures([{name:
// 'consent-tracking-api', version: '0.1'}], callback) makes window.Shopify.customerPrivacy
// available, whose ...Allowed() methods say what processing is allowed; a choice made later on
// the page is the document event visitorConsentCollected, its detail carrying marketingAllowed,
// saleOfDataAllowed, analyticsAllowed, preferencesAllowed.
// Tests set window.__consent before this script and call window.__grantConsent() later.
(function () {
  var consent = window.__consent || { marketing: true, saleOfData: true, analytics: true, preferences: true };
  window.Shopify = window.Shopify || {};
  window.Shopify.routes = { root: '/' };
  window.Shopify.loadFeatures = function (features, callback) {
    window.Shopify.customerPrivacy = {
      marketingAllowed: function () { return consent.marketing; },
      saleOfDataAllowed: function () { return consent.saleOfData; },
      analyticsProcessingAllowed: function () { return consent.analytics; },
      preferencesProcessingAllowed: function () { return consent.preferences; },
    };
    setTimeout(function () { callback(undefined); }, 0);
  };
  window.__grantConsent = function () {
    consent = { marketing: true, saleOfData: true, analytics: true, preferences: true };
    document.dispatchEvent(new CustomEvent('visitorConsentCollected', {
      detail: { marketingAllowed: true, saleOfDataAllowed: true, analyticsAllowed: true, preferencesAllowed: true },
    }));
  };
})();
