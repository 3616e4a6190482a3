<?php
/**
 * One checkout with web/woocommerce-consent.php loaded as WordPress loads a must-use plugin:
 * WooCommerce fires the scenario's checkout hook with the order before saving it. Prints, as JSON,
 * the order's meta rows, the hooks the snippet registered and the calls it made.
 */

require __DIR__ . '/wordpress-stubs.php';
require $argv[1];

$hook  = $scenario['hook'] ?? 'woocommerce_checkout_create_order';
$order = new WC_Order();
if ( 'woocommerce_checkout_create_order' === $hook ) {
	do_action( $hook, $order, array( 'billing_email' => 'shopper@example.com' ) );
} else {
	do_action( $hook, $order, new stdClass() ); // the Store API passes its WP_REST_Request
}

echo json_encode(
	array(
		'meta_data' => $order->get_meta_data(),
		'hooks'     => array_keys( $GLOBALS['pinrelay_test_hooks'] ),
		'calls'     => $GLOBALS['pinrelay_test_calls'],
	)
);
