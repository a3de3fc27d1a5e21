// @ambient/waypoint: the L7 proxy.
export {};
